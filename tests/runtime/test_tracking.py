"""Child runs: each ends as the work inside it did, and the parent stays open."""

import socket
import time

import mlflow
import pytest

from statefarm.runtime.tracking import TrackingServerError, child_run
from tests.conftest import copy_project, run_demo_data


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


def _conf_base_store_only(project):
    """The project as a fresh checkout has it: no mlflow.yml but conf/base's."""
    for environment in ("local", "demo", "real80x60"):
        (project / "conf" / environment / "mlflow.yml").unlink()


def test_mlflow_tracking_uri_in_the_environment_is_where_runs_go(tmp_path, monkeypatch):
    project = copy_project(tmp_path / "project", monkeypatch)
    _conf_base_store_only(project)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'elsewhere.db'}")
    run_demo_data(project)
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'elsewhere.db'}")
    runs = client.search_runs([client.get_experiment_by_name("statefarm").experiment_id])
    assert len(runs) == 1 and not (project / "mlflow.db").exists()


def test_an_unreachable_tracking_server_stops_the_run_in_seconds_naming_it(tmp_path, monkeypatch):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        uri = f"http://127.0.0.1:{probe.getsockname()[1]}"
    project = copy_project(tmp_path / "project", monkeypatch)
    _conf_base_store_only(project)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):  # a proxy would answer for the port
        monkeypatch.delenv(proxy, raising=False)
    started = time.monotonic()
    with pytest.raises(TrackingServerError, match=rf"^the MLflow tracking server {uri} does not answer \("):
        run_demo_data(project)
    assert time.monotonic() - started < 60  # MLflow's own retries took over four minutes
    assert not (project / "data" / "01_raw").exists()
