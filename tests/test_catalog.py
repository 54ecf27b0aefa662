"""The catalog as Kedro-Viz draws it: every stored dataset in a layer, the layers in the chain's order."""

from types import SimpleNamespace

import pytest
from kedro.framework.project import pipelines
from kedro.framework.session import KedroSession
from kedro_viz.services.layers import sort_layers

from tests.conftest import copy_project


@pytest.mark.parametrize("members", [{}, {"linear": {"model": {"name": "statefarm_linear"}}}], ids=["alone", "blended"])
def test_every_stored_dataset_of_the_chain_is_in_a_layer_and_the_layers_have_an_order(tmp_path, monkeypatch, members):
    project = copy_project(tmp_path, monkeypatch)
    params = {"blend": {"members": members}}
    with KedroSession.create(project_path=project, env="demo", runtime_params=params) as session:
        catalog = session.load_context().catalog
        chain = pipelines["pseudo_label"]
    stored = {name for name in chain.datasets() if not name.startswith("params:") and name in catalog}
    layers = {name: (catalog.get(name).metadata or {}).get("kedro-viz", {}).get("layer") for name in stored}
    assert not [name for name, layer in layers.items() if layer is None]
    assert layers["pseudo.fold_0.model"] == "pseudo models" and layers["baseline.fold_0.model"] == "baseline models"
    if members:  # a member's models sit with the main model's, its blend's submission with the others
        assert (
            layers["pseudo.linear.fold_0.model"] == "pseudo models"
            and layers["pseudo.blend.submission"] == "submissions"
        )

    # Kedro-Viz's own ordering, which gives up on layers when they form a cycle.
    nodes = {name: SimpleNamespace(layer=layer) for name, layer in layers.items()}
    dependencies = {name: set() for name in nodes}
    for node in chain.nodes:
        nodes[node.name] = SimpleNamespace(layer=None)
        dependencies[node.name] = set(node.outputs)
        for name in node.inputs:
            dependencies.setdefault(name, set()).add(node.name)
            nodes.setdefault(name, SimpleNamespace(layer=None))
    order = sort_layers(nodes, dependencies)
    expected = ["raw", "intermediate", "feature", "model_input", "baseline models", "baseline model output",
                "pseudo labels", "pseudo models", "pseudo model output", "submissions"]  # fmt: skip
    assert [layer for layer in order if layer in expected] == expected
