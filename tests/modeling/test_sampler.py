import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from statefarm.modeling.sampler import MixedBatchSampler


@pytest.mark.parametrize(
    ("labelled", "pseudo", "batch_size", "fraction"), [(1000, 300, 32, 0.25), (97, 500, 12, 1 / 3)]
)
def test_every_batch_has_the_exact_share_and_every_labelled_item_is_seen_once(labelled, pseudo, batch_size, fraction):
    sampler = MixedBatchSampler(labelled, pseudo, batch_size, fraction, seed=0)
    k = round(fraction * batch_size)
    seen = []
    for batch in sampler:
        in_pseudo = [i for i in batch if i >= labelled]
        assert len(in_pseudo) == k
        assert len(batch) <= batch_size and len(set(batch)) == len(batch)
        seen += [i for i in batch if i < labelled]
    assert sorted(seen) == list(range(labelled))
    assert len(list(sampler)) == len(sampler)


def test_pseudo_pool_is_used_evenly():
    sampler = MixedBatchSampler(1000, 100, 20, 0.25, seed=1)
    counts = np.bincount([i - 1000 for batch in sampler for i in batch if i >= 1000], minlength=100)
    assert counts.max() - counts.min() <= 1  # without replacement, reshuffled when exhausted


def test_shuffles_differ_by_epoch_and_repeat_by_seed():
    first = MixedBatchSampler(200, 50, 16, 0.25, seed=7)
    again = MixedBatchSampler(200, 50, 16, 0.25, seed=7)
    epoch0 = list(first)
    assert epoch0 == list(again)
    first.set_epoch(1)
    assert list(first) != epoch0
    again.set_epoch(1)
    assert list(first) == list(again)
    assert list(MixedBatchSampler(200, 50, 16, 0.25, seed=8)) != epoch0


def test_works_as_a_dataloader_batch_sampler_with_workers():
    dataset = TensorDataset(torch.arange(130))
    loader = DataLoader(dataset, batch_sampler=MixedBatchSampler(100, 30, 8, 0.25, seed=0), num_workers=2)
    batches = [batch[0] for batch in loader]
    assert all(int((b >= 100).sum()) == 2 for b in batches)
    assert sorted(torch.cat(batches)[torch.cat(batches) < 100].tolist()) == list(range(100))


@pytest.mark.parametrize(("batch_size", "fraction"), [(4, 0.1), (4, 0.95), (8, 0.0), (8, 1.0)])
def test_impossible_shares_are_refused(batch_size, fraction):
    with pytest.raises(ValueError):
        MixedBatchSampler(10, 10, batch_size, fraction)


@pytest.mark.parametrize(("labelled", "world_size"), [(1000, 2), (97, 3)])
def test_each_rank_keeps_the_exact_share_and_the_ranks_cover_the_labelled_items(labelled, world_size):
    ranks = [
        MixedBatchSampler(labelled, 500, 12, 0.25, seed=3, rank=r, world_size=world_size) for r in range(world_size)
    ]
    batches = [list(sampler) for sampler in ranks]
    assert len({len(rank_batches) for rank_batches in batches}) == 1  # the same number of steps on every rank
    assert all(len(rank_batches) == len(sampler) for rank_batches, sampler in zip(batches, ranks, strict=True))
    for rank_batches in batches:
        assert all(sum(i >= labelled for i in batch) == 3 for batch in rank_batches)
    seen = [i for rank_batches in batches for batch in rank_batches for i in batch if i < labelled]
    assert set(seen) == set(range(labelled)) and len(seen) - labelled < world_size  # padding: fewer than a rank each
    single = list(MixedBatchSampler(labelled, 500, 12, 0.25, seed=3))
    assert single == list(MixedBatchSampler(labelled, 500, 12, 0.25, seed=3, rank=0, world_size=1))


def test_a_labelled_share_passes_over_a_fresh_part_of_the_labelled_items_each_epoch():
    sampler = MixedBatchSampler(1000, 300, 32, 0.25, seed=0, labelled_share=0.5)
    epochs = []
    for epoch in range(2):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == len(sampler) == -(-500 // 24)  # half the steps of a whole pass
        assert all(sum(i >= 1000 for i in batch) == 8 for batch in batches)
        seen = [i for batch in batches for i in batch if i < 1000]
        assert len(seen) == len(set(seen)) == 500
        epochs.append(set(seen))
    assert 0 < len(epochs[0] & epochs[1]) < 500  # drawn afresh, not the same half again
    whole = MixedBatchSampler(1000, 300, 32, 0.25, seed=0)
    assert list(MixedBatchSampler(1000, 300, 32, 0.25, seed=0, labelled_share=1.0)) == list(whole)
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="labelled share"):
            MixedBatchSampler(1000, 300, 32, 0.25, labelled_share=bad)
