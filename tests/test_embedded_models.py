"""Which GGUF files the embedded backend opens and how it keeps them, with real llama.cpp and the SmolLM2 GGUF.

The page and the API may load only the built-in model, the start-up --model and the .gguf files of the
models folder; the CLI's own commands any path the operator names. Every spelling of a file is one loaded
model, at most max_models stay loaded (the least recently used freed), a file that is not a GGUF file is
refused with the true reason, and the model can load in the background while the page is served."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time

import pytest

import cli
import flow
from backends import BackendError, Settings, create, embedded
from core.conversation import EXAMPLE_PATH, Conversation
from tests.conftest import ROOT
from workbench import panels

PROMPT = "<|im_start|>user\nSay hi.<|im_end|>\n<|im_start|>assistant\n"
GREEDY = {"max_new_tokens": 3, "temperature": 0.0, "top_k": 1, "seed": 7}
NOT_OFFERED = "is not one of the models this app offers"


@pytest.fixture(autouse=True)
def served_page(user_home):
    """Each test starts as a served page does (the default allow-list, a fresh user folder) with no model loaded."""
    saved = dict(embedded._allowed)
    embedded.allow_models()
    yield
    embedded._allowed.update(saved)
    with embedded._lock:
        embedded._evict_beyond(0)


@pytest.fixture(scope="session")
def copies(model_path, tmp_path_factory) -> list[str]:
    """Two byte-for-byte copies of the SmolLM2 GGUF: other files (inodes), so other models to the cache."""
    folder = tmp_path_factory.mktemp("gguf-copies")
    return [str(shutil.copyfile(model_path, folder / name)) for name in ("a.gguf", "b.gguf")]


def offer(user_home, path: str, name: str) -> str:
    """Put `path` in the models folder as the operator would, with a symbolic link; returns the offered path."""
    models = user_home / "models"
    models.mkdir(parents=True, exist_ok=True)
    (models / name).symlink_to(path)
    return str(models / name)


def freed(llm) -> bool:
    return llm._model.model is None  # llama_cpp frees the model's memory in Llama.close()


def test_page_and_api_requests_load_only_the_offered_models(model_path, copies, user_home):
    for path in (copies[0], "/etc/passwd", "/no/such/file.gguf", str(user_home)):
        with pytest.raises(BackendError) as refused:
            embedded.resolve(path)
        assert NOT_OFFERED in str(refused.value)  # the same sentence: nothing learnt about the file
    request = flow.GenerateRequest(backend_type="embedded", wrapper="chatml", params=GREEDY,
                                   conversation=Conversation.from_file(EXAMPLE_PATH), settings=Settings(model="/etc/passwd"))
    with pytest.raises(BackendError, match=NOT_OFFERED):  # the API's path
        flow.generate(request)
    offered = offer(user_home, copies[0], "mine.gguf")
    assert embedded.choices() == [model_path, offered]
    assert embedded.resolve(offered) == copies[0] and embedded.resolve("") == model_path
    assert create("embedded", Settings(model=offered)).complete(PROMPT, GREEDY).usage["completion_tokens"] == 3


def test_the_page_shows_the_offered_models_and_refuses_others(model_path, copies, user_home):
    offered = offer(user_home, copies[0], "mine.gguf")
    assert panels.model_choices("embedded") == [model_path, offered] and panels.model_choices("ollama") == []
    url, status, names, value = panels.picked_backend("embedded", "llama3")  # a server's name is not a GGUF
    assert names == [model_path, offered] and value is None and f"Model: {embedded.ON_FIRST_USE}." in status
    assert panels.picked_backend("embedded", offered)[3] == offered
    assert panels.picked_backend("openai", offered)[2:] == ([], None)  # a GGUF path is no server model name
    assert panels.picked_backend("openai", "llama3")[3] == "llama3"
    template, _ = panels.wrapper_view("chatml")
    config = panels.PanelConfig.from_values({"model": offered, "timeout": 60, "wrapper": "chatml", "template": template,
                                             **panels.neutral_values(), **GREEDY})
    updates = list(panels.run_generation(config, EXAMPLE_PATH.read_text()))
    assert updates[0][3] == f"⏳ Generating… ({embedded.ON_FIRST_USE})" and updates[-1][3].startswith("Done")
    config.model = "/etc/passwd"
    assert NOT_OFFERED in list(panels.run_generation(config, EXAMPLE_PATH.read_text()))[-1][3]


def test_start_up_model_and_models_dir_are_offered(model_path, copies, tmp_path):
    (tmp_path / "nested").mkdir()
    shutil.copyfile(copies[1], tmp_path / "nested" / "B.GGUF")
    (tmp_path / "notes.txt").write_text("not a model")
    (tmp_path / "folder.gguf").mkdir()
    embedded.allow_models(start_model=copies[0], models_dir=str(tmp_path))
    assert embedded.choices() == [copies[0], model_path, str(tmp_path / "nested" / "B.GGUF")]
    assert embedded.resolve("") == copies[0]  # a request naming no model gets the operator's --model
    with pytest.raises(BackendError, match=NOT_OFFERED):
        embedded.resolve(str(tmp_path / "folder.gguf"))


def test_five_spellings_of_one_file_load_one_model(model_path, tmp_path):
    folder, name = os.path.split(model_path)
    (tmp_path / "link.gguf").symlink_to(model_path)
    spellings = [f"{folder}//{name}", f"{folder}/./{name}", f"{folder}/../{os.path.basename(folder)}/{name}",
                 os.path.relpath(model_path), str(tmp_path / "link.gguf")]
    loaded = [embedded.load(s) for s in spellings]
    assert all(llm is loaded[0] for llm in loaded) and len(embedded._models) == 1
    os.link(model_path, tmp_path / "hard.gguf")  # a hard link is the same file too, offered only to the operator
    with pytest.raises(BackendError, match=NOT_OFFERED):
        embedded.load(str(tmp_path / "hard.gguf"))
    embedded.allow_models(any_path=True)
    assert embedded.load(str(tmp_path / "hard.gguf")) is loaded[0] and len(embedded._models) == 1


def test_files_that_are_not_gguf_models_get_their_true_reason(tmp_path, user_home):
    (tmp_path / "notes.txt").write_text("hello, I am text\n")
    (tmp_path / "empty.gguf").write_bytes(b"")
    embedded.allow_models(any_path=True)
    reasons = {"/dev/zero": "/dev/zero is not a regular file (a device, pipe or socket), not a GGUF model file",
               str(tmp_path): f"{tmp_path} is a folder, not a GGUF model file",
               str(tmp_path / "notes.txt"): f"{tmp_path}/notes.txt is not a GGUF model file: it does not start with the bytes 'GGUF'",
               str(tmp_path / "empty.gguf"): f"{tmp_path}/empty.gguf is not a GGUF model file: it does not start with the bytes 'GGUF'",
               str(tmp_path / "missing.gguf"): f"the model file {tmp_path}/missing.gguf does not exist"}
    for path, reason in reasons.items():
        with pytest.raises(BackendError) as refused:
            create("embedded", Settings(model=path)).complete(PROMPT, GREEDY)
        assert str(refused.value) == reason
    (tmp_path / "broken.gguf").write_bytes(b"GGUF" + bytes(64))  # the magic, then nothing llama.cpp can read
    with pytest.raises(BackendError, match="llama.cpp could not load broken.gguf"):
        embedded.load(str(tmp_path / "broken.gguf"))
    assert embedded.load_state(str(tmp_path / "broken.gguf")).startswith("llama.cpp could not load broken.gguf")
    embedded.allow_models()  # the page: a text file in the models folder is offered, and refused as what it is
    offered = offer(user_home, str(tmp_path / "notes.txt"), "notes.gguf")
    with pytest.raises(BackendError, match="notes.gguf is not a GGUF model file"):
        embedded.resolve(offered)


def test_least_recently_used_models_are_freed_beyond_max_models(model_path, copies):
    embedded.allow_models(any_path=True)
    embedded.set_max_models(1)
    try:
        first = embedded.load(model_path)
        second = embedded.load(copies[0])
        assert freed(first) and not freed(second) and len(embedded._models) == 1
        again = embedded.load(model_path)
        assert again is not first and freed(second) and not freed(again)
        embedded.set_max_models(2)
        second = embedded.load(copies[0])
        assert embedded.load(model_path) is again  # touched: now the most recently used
        third = embedded.load(copies[1])
        assert freed(second) and not freed(again) and not freed(third) and len(embedded._models) == 2
    finally:
        embedded.set_max_models(embedded.DEFAULT_MAX_MODELS)
    with pytest.raises(BackendError, match="at least 1"):
        embedded.set_max_models(0)


def test_a_model_evicted_mid_generation_is_freed_when_the_generation_ends(model_path, copies):
    embedded.allow_models(any_path=True)
    embedded.set_max_models(1)
    try:
        running = embedded.load(model_path)
        stream = create("embedded", Settings(model=model_path)).stream(PROMPT, {**GREEDY, "max_new_tokens": 6})
        first_chunk = next(stream)
        embedded.load(copies[0])  # evicts the running model from the cache
        assert not freed(running) and len(embedded._models) == 1
        done = list(stream)[-1]
        assert done.text.startswith(first_chunk) and done.usage["completion_tokens"] == 6
        assert freed(running)
    finally:
        embedded.set_max_models(embedded.DEFAULT_MAX_MODELS)


def test_preload_loads_in_the_background_and_load_state_says_so(copies, user_home):
    offered = offer(user_home, copies[0], "mine.gguf")
    assert embedded.load_state(offered) == embedded.ON_FIRST_USE
    loader = threading.Thread(target=embedded.preload, args=(offered,))
    loader.start()
    seen = []
    while loader.is_alive():
        seen.append(embedded.load_state(offered))
        time.sleep(0.005)
    loader.join()
    assert embedded.LOADING_IN_BACKGROUND in seen and set(seen) <= {
        embedded.ON_FIRST_USE, embedded.LOADING_IN_BACKGROUND, embedded.LOADED}
    assert embedded.load_state(offered) == embedded.LOADED
    embedded.preload("/etc/passwd")  # a refused path loads nothing and says why
    assert NOT_OFFERED in embedded.load_state("/etc/passwd")


def test_importing_the_app_and_building_the_page_do_not_import_llama_cpp():
    code = ("import sys, app, backends.embedded; from flow.startup import StartupConfig; app.build_app(StartupConfig()); "
            "print('llama_cpp' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False"


# the command line: serving restricts, the CLI's own commands do not

def served(argv: list[str]):
    """(exit status, the StartupConfig handed to serve or None) for `python app.py ARGV`, run in this process."""
    got = []
    status = cli.main(argv, serve=lambda config: got.append(config) or 0)
    return status, (got[0] if got else None)


def test_model_naming_a_wrapper_selects_it_as_memgpt_did(capsys, tmp_path, monkeypatch):
    status, config = served(["--model", "airoboros-l2-70b-2.1"])
    assert status == 0 and config.wrapper == "airoboros-l2-70b-2.1" and config.backend_model == ""
    assert "note: --model airoboros-l2-70b-2.1 names a wrapper" in capsys.readouterr().err
    monkeypatch.chdir(tmp_path)
    (tmp_path / "chatml").write_text("a file by that name")  # a file wins: --model names a model file
    status, config = served(["--model", "chatml"])
    assert status == 2 and config is None
    assert capsys.readouterr().err == "error: chatml is not a GGUF model file: it does not start with the bytes 'GGUF'\n"


def test_serving_refuses_a_missing_model_at_start_and_offers_the_start_up_model(capsys, copies, tmp_path):
    assert served(["--model", "/no/such.gguf"]) == (2, None)
    assert capsys.readouterr().err == "error: the model file /no/such.gguf does not exist\n"
    status, config = served(["--model", copies[0], "--models-dir", str(tmp_path), "--max-models", "3"])
    assert status == 0 and (config.backend_model, config.models_dir, config.max_models) == (copies[0], str(tmp_path), 3)
    assert embedded.choices()[0] == copies[0] and embedded.models_folder() == tmp_path
    with pytest.raises(BackendError, match=NOT_OFFERED):
        embedded.resolve(copies[1])


def test_max_models_from_the_environment_and_its_bad_values(capsys, monkeypatch):
    monkeypatch.setenv("PFP_MAX_MODELS", "4")
    assert served([])[1].max_models == 4
    monkeypatch.setenv("PFP_MAX_MODELS", "0")
    assert served([]) == (2, None)
    assert capsys.readouterr().err == "error: PFP_MAX_MODELS must be a whole number of at least 1, not '0'\n"
    monkeypatch.delenv("PFP_MAX_MODELS")
    with pytest.raises(SystemExit):
        served(["--max-models", "none"])
    assert "--max-models: give a whole number of at least 1, not 'none'" in capsys.readouterr().err


def test_the_cli_generate_command_loads_any_path_the_operator_names(copies):
    assert cli.main(["wrappers"]) == 0
    assert embedded.resolve(copies[1]) == copies[1]  # in this process: the CLI's commands are the operator's
    done = subprocess.run([sys.executable, str(ROOT / "app.py"), "generate", "--backend-type", "embedded", "--model",
                           copies[1], "--wrapper", "chatml", "--conversation", str(EXAMPLE_PATH), "--preset",
                           "deterministic", "--param", "max_new_tokens=2"], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["request"]["model"] == copies[1]
