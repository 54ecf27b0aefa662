"""Child runs: each ends as the work inside it did, and the parent stays open."""

import mlflow
import pytest

from statefarm.tracking import child_run


@pytest.mark.parametrize(
    ("raised", "status"),
    [
        (None, "FINISHED"),
        (ValueError("bad batch"), "FAILED"),
        (KeyboardInterrupt(), "KILLED"),
        (SystemExit(143), "KILLED"),
    ],
)
def test_a_child_run_ends_as_its_work_did_and_the_parent_stays_open(raised, status):
    with mlflow.start_run(run_name="parent") as parent:
        try:
            with child_run("baseline.fold_0", {"model": {"name": "lite0"}}) as log:
                log({"valid_loss": 0.5}, step=0)
                if raised is not None:
                    raise raised
        except (ValueError, KeyboardInterrupt, SystemExit):
            pass
        assert mlflow.active_run().info.run_id == parent.info.run_id
    [child] = mlflow.search_runs(
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'", output_format="list"
    )
    assert child.info.status == status
    assert child.data.params["model.name"] == "lite0" and child.data.metrics["valid_loss"] == 0.5
    assert ("error" in child.data.tags) == (raised is not None)
    assert mlflow.get_run(parent.info.run_id).info.status == "FINISHED"
