"""The web app's server process, as `docstack up` starts it: docstack is warmed up first (query
embedder, safety shields, the model's tokenizer, the stack client), then Streamlit serves the app
(ui/app.py) in the same process, with the options given here.

    python -m docstack.ui.serve --server.port 8501 ...

Streamlit runs the app's script only when a browser opens a page, so a warm-up started there
raced the first question; here the server answers its health check, and `docstack up` returns,
only once the first question has nothing left to load."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from docstack.ui.common import docstack, warming
from streamlit.web import cli as streamlit_cli

APP = Path(__file__).resolve().parent / "app.py"


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("docstack").setLevel(logging.INFO)  # the warm-up's lines, not every request's
    # The app's cached resources are made before Streamlit's runtime exists, which it warns of.
    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").setLevel(logging.ERROR)
    warming(docstack()).join()
    sys.argv = ["streamlit", "run", str(APP), *sys.argv[1:]]
    sys.exit(streamlit_cli.main())


# Ingestion's worker processes re-import the main module as __mp_main__ (multiprocessing does
# that), and must not start a second server there.
if __name__ == "__main__":
    main()
