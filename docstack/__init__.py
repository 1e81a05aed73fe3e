"""docstack: retrieval-augmented document Q&A on Llama Stack.

    from docstack import DocStack
    ds = DocStack()
    ds.ingest(["docs/"])
    print(ds.ask("How do I start the stack?").answer)
"""

from docstack.console import quiet_libraries

quiet_libraries()

from docstack.api import DocStack  # noqa: E402
from docstack.settings import Settings, get_settings  # noqa: E402

__all__ = ["DocStack", "Settings", "get_settings"]
__version__ = "0.1.0"
