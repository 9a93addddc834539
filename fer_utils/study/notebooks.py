"""Executing and exporting notebooks: the only place that runs papermill, nbconvert or Chromium.

One failure convention (papermill's): a notebook that fails raises
:class:`~fer_utils.errors.NotebookError`, which names the notebook, the failing cell and the
kept executed copy (with papermill's error banner at the failing cell). A failed execution never
replaces an earlier good executed copy: every execution writes to a temporary file beside its
destination, which becomes ``<name>.ipynb`` on success and ``<name>.failed.ipynb`` on failure.

:func:`export_report` executes the report notebook (``06_report``) and turns it into one
self-contained HTML file (images inline, no code, no stderr) and, where a Chromium is installed,
a PDF. Nothing here takes an argparse Namespace: the CLI calls these with keyword arguments.
"""

from __future__ import annotations

import ast
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fer_utils import paths
from fer_utils.atomic import atomic_write_text, temp_path_for
from fer_utils.errors import FerError, NotebookError

REPORT_NAME = "06_report"


def notebook_path(name) -> Path:
    """``notebooks/<name>.ipynb`` for a bare name, or the path itself."""
    p = Path(name)
    return p if p.suffix == ".ipynb" else paths.NOTEBOOKS_DIR / f"{name}.ipynb"


def parameters_of(path) -> set:
    """Names assigned in the notebook's ``parameters`` cell (papermill injects only those)."""
    nb = json.loads(Path(path).read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            tree = ast.parse("".join(cell["source"]))
            return {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets if isinstance(t, ast.Name)}
    return set()


def failed_copy(dest) -> Path:
    """Where a failed execution of ``dest`` is kept: ``<name>.failed.ipynb`` beside it."""
    dest = Path(dest)
    return dest.with_name(dest.stem + ".failed.ipynb")


class OnceEcho:
    r"""A stream for the notebooks' echoed stdout that lets each line of a study's configuration
    (what :meth:`fer_utils.study.experiments.Experiment.describe` prints at the top of every
    notebook) through once per ``fer run``; everything else passes as it comes. The executed
    notebooks keep their own full output.

    >>> import io; out = io.StringIO(); echo = OnceEcho(out)
    >>> _ = echo.write("profile    demo: ...\nepoch 1\n"); _ = echo.write("profile    demo: ...\nepoch 1\n")
    >>> out.getvalue()
    'profile    demo: ...\nepoch 1\nepoch 1\n'
    """

    PREFIXES = ("profile    ", "epochs     scaled", "data       ", "seeds      ", "selection  ", "chain      ", "run store  ")

    def __init__(self, stream):
        self.stream, self.seen, self.partial = stream, set(), ""

    def write(self, text: str) -> int:
        lines = (self.partial + text).split("\n")
        self.partial = lines.pop()
        for line in lines:
            if line.startswith(self.PREFIXES):
                if line in self.seen:
                    continue
                self.seen.add(line)
            self.stream.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        if self.partial and not self.partial.startswith(self.PREFIXES):
            self.stream.write(self.partial)
            self.partial = ""
        self.stream.flush()


#: One per process: ``fer run`` executes its notebooks one after another through it.
_ECHO: OnceEcho | None = None


def already_shown(text: str) -> None:
    """Lines of a configuration this process printed itself: the notebooks' echo skips them."""
    _echo().seen.update(line for line in text.splitlines() if line.startswith(OnceEcho.PREFIXES))


def _echo() -> OnceEcho:
    global _ECHO
    if _ECHO is None or _ECHO.stream is not sys.stdout:
        _ECHO = OnceEcho(sys.stdout)
    return _ECHO


def execute(notebook, dest, parameters: dict | None = None, *, cwd=None, stream_output: bool = True) -> Path:
    """Execute ``notebook`` (a name in notebooks/ or a path) with papermill into ``dest``.

    Only the parameters the notebook declares are injected (others are dropped). The kernel's
    working directory is ``cwd`` (default notebooks/, as in JupyterLab). ``stream_output``:
    echo the cells' stdout here as they run (per-epoch lines). Raises :class:`NotebookError`
    on failure; the executed copy is then kept at :func:`failed_copy` and ``dest`` is untouched.
    """
    import papermill as pm

    from fer_utils.training.backend import quiet

    quiet()
    src = notebook_path(notebook)
    if not src.exists():
        raise FerError(f"{src}: no such notebook; the notebooks are in {paths.NOTEBOOKS_DIR}")
    accepted = parameters_of(src)
    params = {k: v for k, v in (parameters or {}).items() if k in accepted}
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_for(dest)
    kept = failed_copy(dest)
    # papermill's own parameter parser warns about lines it cannot read (we filtered above), and
    # the kernel warns that it talks TCP on localhost: noise on the terminal, not information.
    logging.getLogger("papermill").setLevel(logging.ERROR)
    try:
        pm.execute_notebook(str(src), str(tmp), parameters=params, cwd=str(cwd or paths.NOTEBOOKS_DIR),
                            kernel_name="python3", progress_bar=False,
                            stdout_file=_echo() if stream_output else None,
                            extra_arguments=["--IPKernelApp.log_level=ERROR"])
        os.replace(tmp, dest)
    except pm.PapermillExecutionError as exc:
        _keep(tmp, kept)
        first = (str(exc.evalue).strip().splitlines() or [""])[0]
        raise NotebookError(f"notebook {src.stem} failed at cell {exc.exec_count}: {exc.ename}: {first}; "
                            f"the executed copy, with the error, is kept at {kept}",
                            notebook=src.stem, cell=exc.exec_count, executed=kept if kept.exists() else None) from None
    except (pm.PapermillException, RuntimeError) as exc:  # kernel died, no kernel, bad notebook
        _keep(tmp, kept)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        where = f"; what ran is kept at {kept}" if kept.exists() else ""
        raise NotebookError(f"notebook {src.stem} could not run: {first}{where}",
                            notebook=src.stem, executed=kept if kept.exists() else None) from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return dest


def _keep(tmp: Path, kept: Path) -> None:
    if tmp.exists():
        os.replace(tmp, kept)


# ---------------------------------------------------------------------------------------------
# Export: executed notebook -> HTML (self-contained) -> PDF (headless Chromium)

PRINT_CSS = """
/* fer_utils.study.notebooks: reading and print styles of the exported report */
body.jp-Notebook { font-family: -apple-system, "Segoe UI", "DejaVu Sans", Helvetica, Arial, sans-serif; }
main { max-width: 1100px; margin: 0 auto; padding: 1.5em 2em; }
.jp-RenderedHTMLCommon table { table-layout: auto; }
.jp-RenderedHTMLCommon td, .jp-RenderedHTMLCommon th { font-size: 12px; }
.jp-OutputArea-output img, .jp-RenderedImage img { max-width: 100%; height: auto; }
.jp-RenderedHTMLCommon h1 { font-size: 1.9em; }
.jp-RenderedHTMLCommon h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 1.4em; }
.fer-banner { border: 2px solid #c0392b; background: #fdecea; padding: .6em 1em; border-radius: 4px; }
.fer-note { color: #555; font-size: .92em; }
.jp-RenderedHTMLCommon table.fer-claims td, .jp-RenderedHTMLCommon table.fer-claims th { font-size: inherit; }
@page { size: A4; margin: 14mm 12mm 16mm 12mm; }
@media print {
  main { max-width: none; padding: 0; }
  body.jp-Notebook { font-size: 10.5pt; }
  .jp-Cell { padding: 0 !important; }
  /* scrollable boxes and display:table wrappers do not split across pages in Chromium */
  .jp-OutputArea, .jp-OutputArea-child, .jp-OutputArea-output, .jp-MarkdownOutput, .jp-Cell-outputArea {
    overflow: visible !important; }
  .jp-OutputArea-child, .jp-OutputArea-output { display: block !important; }
  .jp-RenderedHTMLCommon table { font-size: 8pt; }
  .jp-RenderedHTMLCommon td, .jp-RenderedHTMLCommon th { font-size: 8pt; padding: 2px 4px !important; }
  table, figure, img, .jp-RenderedImage, .fer-keep { break-inside: avoid; page-break-inside: avoid; }
  table.fer-claims { break-inside: auto; page-break-inside: auto; }
  h1, h2, h3 { break-after: avoid; page-break-after: avoid; }
  .fer-pagebreak { break-before: page; page-break-before: always; height: 0; }
  a { color: inherit; text-decoration: none; }
}
"""

_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block html_head_css -%}<style type="text/css">""" + PRINT_CSS + """</style>{%- endblock html_head_css -%}
"""

REPORT_TITLE = "Facial expression recognition on RAF-DB: the course report reproduced"


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        exe = shutil.which(name)
        if exe:
            return exe
    return None


def to_html(executed, dest, show_code: bool = False, title: str = REPORT_TITLE) -> Path:
    """A self-contained HTML file (images inline as base64, no scripts from the web, no stderr)."""
    import jinja2
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(executed), as_version=4)
    for cell in nb.cells:
        if cell.get("cell_type") == "code":
            cell.outputs = [o for o in cell.get("outputs", []) if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
    nb.metadata["title"] = title
    exporter = HTMLExporter(template_name="lab", extra_loaders=[jinja2.DictLoader({"fer_report.html.j2": _TEMPLATE})],
                            template_file="fer_report.html.j2", exclude_input=not show_code,
                            exclude_input_prompt=True, exclude_output_prompt=True, embed_images=True)
    body, _ = exporter.from_notebook_node(nb)
    atomic_write_text(dest, body)
    os.chmod(dest, 0o644)  # mkstemp made it private; a report is meant to be shared
    return Path(dest)


def to_pdf(html, dest, chromium: str | None = None, timeout: float = 180) -> Path:
    """Print ``html`` to PDF with a headless Chromium (raises FerError when it fails)."""
    chromium = chromium or find_chromium()
    if chromium is None:
        raise FerError("no Chromium found (chromium, chromium-browser or google-chrome)")
    html, dest = Path(html).resolve(), Path(dest)
    tmp = temp_path_for(dest)
    with tempfile.TemporaryDirectory(prefix="fer-chromium-") as profile_dir:
        cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage", f"--user-data-dir={profile_dir}", "--no-pdf-header-footer",
               "--print-to-pdf-no-header", f"--print-to-pdf={tmp}", html.as_uri()]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            tmp.unlink(missing_ok=True)
            raise FerError(f"{chromium} did not finish printing {html} within {timeout:.0f}s") from None
    if proc.returncode != 0 or not tmp.exists() or tmp.stat().st_size == 0:
        tmp.unlink(missing_ok=True)
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise FerError(f"{chromium} could not print {html} to PDF (exit {proc.returncode}): {' | '.join(tail)}")
    os.replace(tmp, dest)
    return dest


def export_report(*, profile: str = "demo", results_dir=None, dest=None, show_code: bool = False, executed=None) -> dict:
    """Execute the report notebook and export it to ``dest``/report.html and, where a Chromium
    is installed, ``dest``/report.pdf.

    ``results_dir``: the results folder to report on (``runs/`` and ``tables/<profile>/``, e.g.
    a published folder of small files); default the project's ``results/``. ``dest``: where the
    executed copy (``executed/06_report.ipynb``), the report and, when ``dest`` is not the
    default, its figures go; default ``results/``. ``executed``: export that executed notebook
    instead of executing the report notebook. Returns the paths written.
    """
    t0 = time.perf_counter()
    dest = Path(dest) if dest is not None else paths.RESULTS_DIR
    if executed is None:
        params = {"profile": profile, "results_dir": str(Path(results_dir).resolve()) if results_dir else "",
                  "figures_dir": "" if dest == paths.RESULTS_DIR else str((dest / "figures").resolve())}
        print(f"Executing {notebook_path(REPORT_NAME)} (profile {profile}"
              + (f", results from {results_dir}" if results_dir else "") + ") ...", flush=True)
        executed = execute(REPORT_NAME, dest / "executed" / f"{REPORT_NAME}.ipynb", params, stream_output=False)
    out = {"executed": Path(executed)}
    out["html"] = to_html(executed, dest / "report.html", show_code=show_code)
    print(f"HTML report: {out['html']}")
    chromium = find_chromium()
    if chromium is None:
        print("No PDF: no Chromium on PATH (chromium, chromium-browser or google-chrome). Install one "
              "(e.g. `apt-get install chromium`), then run `fer report` again; or print the HTML from a browser.")
    else:
        try:
            out["pdf"] = to_pdf(out["html"], dest / "report.pdf", chromium)
            print(f"PDF report:  {out['pdf']}")
        except FerError as exc:
            print(f"No PDF: {exc}. The HTML report is complete; print it from a browser.", file=sys.stderr)
    print(f"Report exported in {time.perf_counter() - t0:.0f}s.")
    return out
