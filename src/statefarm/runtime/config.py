"""Where models run: one ``runtime`` group per environment, shared by training, test prediction and the scan.

None of it decides what a model learns, so none of it is part of a recipe: a model
trained on one device resumes, or is predicted with, on another. A blend member may
put its own keys over it (``blend.members.<name>.runtime``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from statefarm.config import Params


class RuntimeConfig(Params):
    """Device, precision and worker processes."""

    device: str = Field("auto", description="auto, cpu, cuda or cuda:<index>")
    amp: bool = Field(True, description="bf16 autocast on CUDA")
    cpu_amp: bool = Field(False, description="bf16 autocast on the CPU: faster for plain convolutions on AMX CPUs")
    channels_last: bool = True
    compile: bool = Field(False, description="torch.compile on CUDA")
    num_workers: int = Field(4, ge=0, description="DataLoader worker processes")
    devices: int | Literal["auto"] = Field(
        1, description="data-parallel processes per machine (one per GPU; gloo on a CPU); auto: every visible GPU"
    )
    nodes: int = Field(1, ge=1, description="machines, each running the same kedro run")
    rendezvous: str = Field("", description="host:port every machine reaches, when nodes > 1")

    @field_validator("devices")
    @classmethod
    def _at_least_one(cls, devices: int | str) -> int | str:
        if devices != "auto" and devices < 1:
            raise ValueError("devices must be at least 1, or auto")
        return devices
