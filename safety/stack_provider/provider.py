from __future__ import annotations


def get_provider_spec():
    from llama_stack_api import Api, InlineProviderSpec

    return InlineProviderSpec(
        api=Api.safety,
        provider_type="inline::docstack",
        pip_packages=[],
        module="docstack.safety.stack_provider",
        config_class="docstack.safety.stack_provider.config.DocstackSafetyConfig",
        description="docstack's offline shields: injection rules and classifiers, context checks, PII and secrets.",
    )
