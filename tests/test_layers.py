"""The layers hold: no import cycles between modules or packages, no import against the layers,
no face importing another (scripts/import_graph.py reads the source)."""

import importlib.util

from tests.conftest import ROOT

spec = importlib.util.spec_from_file_location("import_graph", ROOT / "scripts" / "import_graph.py")
import_graph = importlib.util.module_from_spec(spec)
spec.loader.exec_module(import_graph)


def test_no_module_imports_in_a_cycle():
    assert import_graph.cycles(import_graph.graph()) == []


def test_no_package_imports_in_a_cycle():
    assert import_graph.cycles(import_graph.package_edges(import_graph.graph())) == []


def test_imports_follow_the_layers_and_faces_stay_apart():
    assert import_graph.layer_violations(import_graph.graph()) == []


def test_the_checker_sees_a_cycle_and_a_face_importing_a_face():
    edges = {"a": {"b"}, "b": {"a"}, "cli": {"ui"}, "ui": set()}
    assert import_graph.cycles(edges) == [["a", "b"]]
    assert import_graph.layer_violations({"cli.x": {"ui.y"}, "ui.y": set(), "core.c": {"flow"}}) == [
        "core (layer 0) imports flow (layer 3)", "face cli imports face ui"]


def test_every_app_package_has_a_layer():
    packages = {name.split(".")[0] for name in import_graph.modules()}
    assert all(any(p in layer for layer in import_graph.LAYERS) for p in packages), packages
