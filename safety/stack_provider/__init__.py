"""docstack's offline shields as a Llama Stack safety provider (module-based external provider).

Registered in stack/distributions/embedded/run.yaml as

    providers:
      safety:
      - provider_id: docstack
        provider_type: inline::docstack
        module: docstack.safety.stack_provider
        config: {home: ...}

Llama Stack imports `docstack.safety.stack_provider.provider.get_provider_spec()` for the spec and
this module's `get_provider_impl` for the implementation. Each registered shield names a stage:
provider_shield_id `input`, `context` or `output`."""

from __future__ import annotations

from typing import Any

from docstack.safety.stack_provider.config import DocstackSafetyConfig


async def get_provider_impl(config: DocstackSafetyConfig, deps: dict[Any, Any]):
    from docstack.safety.stack_provider.impl import DocstackSafetyImpl

    impl = DocstackSafetyImpl(config)
    await impl.initialize()
    return impl
