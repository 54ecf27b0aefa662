"""GPU placement: nodes running side by side (ThreadRunner) never share a GPU, and wait for a free one."""

import threading

import pytest
import torch

from statefarm.runtime.placement import DevicePool, claim_devices


def test_side_by_side_claims_take_different_gpus_and_a_third_waits_for_one_to_free():
    pool = DevicePool(2)
    first, second = pool.claim(1), pool.claim(1)
    assert first.__enter__() == [0] and second.__enter__() == [1]

    third: list[list[int]] = []
    waiting = threading.Thread(target=lambda: third.append(pool.claim(1).__enter__()))
    waiting.start()
    waiting.join(timeout=0.3)
    assert waiting.is_alive() and third == []  # both GPUs are busy: the third fold waits

    second.__exit__(None, None, None)
    waiting.join(timeout=5)
    assert third == [[1]]  # it takes the GPU the second one gave back
    first.__exit__(None, None, None)


def test_a_data_parallel_claim_waits_for_enough_free_gpus_and_too_many_is_an_error():
    pool = DevicePool(3)
    with pool.claim(1) as held:
        assert held == [0]
        with pool.claim(2) as pair:
            assert pair == [1, 2]
    with pool.claim(3) as every:
        assert every == [0, 1, 2]  # all were given back, even after the nested blocks
    with pytest.raises(ValueError, match="runtime.devices asks for 4 GPUs; this machine has 3"):
        with pool.claim(4):
            pass


def test_a_claim_is_given_back_when_the_node_fails():
    pool = DevicePool(1)
    with pytest.raises(RuntimeError, match="out of memory"):
        with pool.claim(1):
            raise RuntimeError("out of memory")
    with pool.claim(1) as held:
        assert held == [0]


def test_a_cpu_is_used_as_given_and_never_waited_for():
    with claim_devices("cpu", 2) as devices:
        with claim_devices("cpu", 2) as again:
            assert devices == again == [torch.device("cpu")] * 2
