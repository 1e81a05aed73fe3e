"""docstack: retrieval-augmented document Q&A on Llama Stack.

    from docstack import DocStack
    ds = DocStack()
    ds.ingest(["docs/"])
    print(ds.ask("How do I start the stack?").answer)

Everything the CLI and the web app use is exported here; the rooms behind it (index, ingest, rag,
stack, safety) are reachable but not needed to use docstack.
"""

from docstack.console import quiet_libraries

quiet_libraries()

from docstack.access.grants import Grant  # noqa: E402
from docstack.access.identity import LOCAL, Principal  # noqa: E402
from docstack.analysis.jobs import Job  # noqa: E402
from docstack.api import DocStack, Status  # noqa: E402
from docstack.console import AuthError, DocstackError  # noqa: E402
from docstack.evidence import Evidence  # noqa: E402
from docstack.index.base import Filters, IndexStats  # noqa: E402
from docstack.ingest.pipeline import IngestReport, Progress  # noqa: E402
from docstack.library import DocumentInfo  # noqa: E402
from docstack.rag.answer import Answer, AnswerStream, Citation  # noqa: E402
from docstack.rag.conversation import Turn  # noqa: E402
from docstack.rag.retrieve import MODES, Hit, Mode  # noqa: E402
from docstack.safety.base import SafetyReport, Verdict  # noqa: E402
from docstack.safety.guard import SafetyStatus, refusal  # noqa: E402
from docstack.settings import Settings, get_settings  # noqa: E402
from docstack.text import page_reference  # noqa: E402
from docstack.stack.backends import PullProgress  # noqa: E402
from docstack.stack.model_queue import Waiting  # noqa: E402
from docstack.stack.operations import ModelStatus  # noqa: E402

__all__ = [
    "DocStack", "Settings", "get_settings", "DocstackError", "AuthError",
    "Answer", "AnswerStream", "Citation", "Evidence", "Hit", "Filters", "Mode", "MODES", "Turn",
    "IngestReport", "Progress", "DocumentInfo", "IndexStats",
    "SafetyReport", "SafetyStatus", "Verdict", "refusal",
    "ModelStatus", "PullProgress", "Status", "Waiting", "Job", "page_reference",
    "Principal", "Grant", "LOCAL",
]
__version__ = "0.1.0"
