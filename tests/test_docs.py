"""The guided tour in docs/ cannot rot: every ```python block runs (blocks of one file share a
namespace, in order) and every `src/mlpnumpy/...py: Name` it points at exists."""
import pathlib
import re

import pytest

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"
ROOT = DOCS.parent
CHAPTERS = ["01-neuron-and-forward-pass.md", "02-chain-rule-dense-layer.md", "03-softmax-cross-entropy.md",
            "04-gradient-checking.md", "05-initialisation.md", "06-training-a-classifier.md",
            "07-batch-normalisation.md", "08-dropout.md", "09-gradient-checking-pitfalls.md",
            "10-training-diagnostics.md", "11-overfitting-and-regularisation.md"]
BLOCK = re.compile(r"^```python[ \t]*([\w-]*)[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)
FASHION = "/usr/share/datasets/fashion-mnist"
REF = re.compile(r"`(src/mlpnumpy/[\w/]+\.py)(?::\s*([\w.]+))?`")


def blocks(path):
    """``(tag, code, line)`` for each ```python block of a Markdown file."""
    text = path.read_text(encoding="utf-8")
    return [(m.group(1), m.group(2), text.count("\n", 0, m.start()) + 2) for m in BLOCK.finditer(text)]


def test_the_index_links_every_chapter():
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    for name in CHAPTERS:
        assert (DOCS / name).is_file(), name
        assert f"({name})" in index, name


@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_blocks_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # anything a block writes lands here
    found = blocks(DOCS / name)
    runnable = [b for b in found if b[0] == ""]
    assert len(runnable) >= 2, f"{name} should show its claims in runnable blocks"
    assert sum(code.count("assert") for _, code, _ in runnable) >= 3, f"{name}: blocks should assert results"
    namespace = {"__name__": f"docs_{name[:2]}"}
    for tag, code, line in found:
        if tag == "no-run":
            # only for real downloaded data; everything else must run
            assert re.search(r"mnist", code, re.I), f"{name}:{line}: no-run block that needs no download"
            continue
        assert tag == "", f"{name}:{line}: unknown block tag {tag!r}"
        if FASHION in code and not pathlib.Path(FASHION).is_dir():
            # the blocks before ran; this one and the rest need Debian's dataset-fashion-mnist files
            pytest.skip(f"{name}:{line} needs {FASHION} (apt-get install dataset-fashion-mnist)")
        exec(compile("\n" * (line - 1) + code, str(DOCS / name), "exec"), namespace)


@pytest.mark.parametrize("name", ["README.md", *CHAPTERS])
def test_code_references_exist(name):
    text = (DOCS / name).read_text(encoding="utf-8")
    refs = REF.findall(text)
    if name != "README.md":
        assert refs, f"{name} should point at the code that implements it"
    for path, symbol in refs:
        source = ROOT / path
        assert source.is_file(), f"{name} points at missing {path}"
        if symbol:
            code = source.read_text(encoding="utf-8")
            for part in symbol.split("."):
                assert re.search(rf"^\s*(def|class)\s+{re.escape(part)}\b", code, re.M), \
                    f"{name} points at {path}: {symbol}, which is not defined there"


@pytest.mark.parametrize("name", ["README.md", *CHAPTERS])
def test_embedded_figures_and_chapter_links_exist(name):
    """Every image a page embeds is in docs/figures/, and every link to a chapter resolves."""
    text = (DOCS / name).read_text(encoding="utf-8")
    for target in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", text):
        assert (DOCS / target).is_file(), f"{name} embeds missing {target}"
    for target in re.findall(r"\]\(([\w-]+\.md)(?:#[\w-]+)?\)", text):
        assert (DOCS / target).is_file(), f"{name} links to missing {target}"


def test_chapters_embed_the_figures_they_discuss():
    embeds = {name: re.findall(r"!\[[^\]]*\]\(figures/([^)]+)\)", (DOCS / name).read_text(encoding="utf-8"))
              for name in CHAPTERS}
    assert {"init_curves.png", "init_hist_sigmoid.png", "init_hist_relu.png", "init_hist_tanh.png"} <= set(
        embeds["05-initialisation.md"])
    assert {"optimizers_loss.png", "optimizers_paths.png", "activations.png", "activations_gradients.png"} <= set(
        embeds["06-training-a-classifier.md"])
    assert "diagnostics.png" in embeds["10-training-diagnostics.md"]


def test_the_block_extractor_sees_tags_and_ignores_other_languages(tmp_path):
    md = tmp_path / "x.md"
    md.write_text("```python\na = 1\n```\n\n```python no-run\nb = 2\n```\n\n```\nshell\n```\n")
    assert [(t, c) for t, c, _ in blocks(md)] == [("", "a = 1\n"), ("no-run", "b = 2\n")]


def test_readme_tour_runs(tmp_path, monkeypatch):
    """The README's tour (its first ```python block) runs as printed."""
    monkeypatch.chdir(tmp_path)
    tag, code, line = blocks(ROOT / "README.md")[0]
    assert "from mlpnumpy import MLP" in code
    exec(compile("\n" * (line - 1) + code, str(ROOT / "README.md"), "exec"), {"__name__": "readme_tour"})
    assert (tmp_path / "digits.npz").is_file()
