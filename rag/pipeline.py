"""The answer pipeline: a question through input screening → retrieve → screen the passages →
pack → generate through the Llama Stack server → screen the answer → cite.

Each stage is a small component with one `run()` and a typed result, testable alone;
`AnswerPipeline` wires them and streams the answer. With safety off the screening stages get a
`NoGuard`, which lets everything through: the pipeline has no special case for it.

    pipeline = AnswerPipeline(ScreenInput(guard), Retrieve(retriever.run, 0.25), ScreenContext(guard),
                              Pack(router, counter, 384), Generate(chat, queue), ScreenOutput(guard), Cite(embed))
    stream = pipeline.stream(Question("How often is the pump serviced?", k=3))
    for text in stream: ...
    stream.answer.citations
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import docstack.telemetry as telemetry
from docstack.index.base import Filters
from docstack.rag.answer import Answer, AnswerStream, Citation
from docstack.rag.cite import Embed, cite
from docstack.rag.grounding import Grounding, ground
from docstack.rag.prompt import ABSTAIN_TEXT, PromptBuilder, is_abstention
from docstack.rag.retrieve import Hit, Mode, Retrieved
from docstack.rag.smalltalk import SmallTalk
from docstack.safety.base import SafetyReport, Verdict
from docstack.safety.guard import Guard, NoGuard, OutputFilter, PassThrough, Screened, refusal
from docstack.stack.catalogue import ModelSpec
from docstack.stack.model_queue import ModelQueue, WaitCallback
from docstack.stack.router import Fallback, Route, Router
from docstack.stack.tokenizers import TokenCounter

AnyGuard = Guard | NoGuard
# (model, messages, max tokens, temperature) -> the reply's text as it streams
Chat = Callable[[ModelSpec, list[dict], int, float], Iterable[str]]


@dataclass(frozen=True)
class Question:
    text: str
    k: int = 3
    mode: Mode = "hybrid"
    filters: Filters | None = None
    model: str | None = None  # the model to try first; None: the router picks
    image: str | None = None  # a picture as a data URL, for vision models


class ScreenInput:
    """The question through the input shields; a blocked question never reaches the stack."""

    def __init__(self, guard: AnyGuard):
        self.guard = guard

    def run(self, question: Question) -> Verdict:
        return self.guard.check_input(question.text)


# (question, k, mode, filters) -> what the index finds: `Retriever.run`, or a collection's
Search = Callable[[str, int, Mode, Filters | None], Retrieved]


class Retrieve:
    """The passages close enough to the question to be evidence (cosine >= `min_score`)."""

    def __init__(self, search: Search, min_score: float):
        self.search = search
        self.min_score = min_score

    def run(self, question: Question) -> Retrieved:
        return self.search(question.text, question.k, question.mode, question.filters).above(self.min_score)


class ScreenContext:
    """The context shield's verdicts, stored at ingest, applied: passages dropped, quoted or stripped."""

    def __init__(self, guard: AnyGuard):
        self.guard = guard

    def run(self, retrieved: Retrieved) -> Screened:
        return self.guard.screen(retrieved.hits, retrieved.verdicts())


class Pack:
    """A prompt for each model the router may use, each packed to that model's window and counted
    with its own tokenizer; the router orders them (see stack/router.py)."""

    def __init__(self, router: Callable[[], Router], counter: Callable[[ModelSpec], TokenCounter], answer_tokens: int):
        self.router = router  # made per question: it knows which models the stack serves now
        self.counter = counter
        self.answer_tokens = answer_tokens

    def run(self, question: Question, screened: Screened) -> Route:
        def pack(spec: ModelSpec):
            builder = PromptBuilder(self.counter(spec), spec.context, self.answer_tokens)
            return builder.run(question.text, screened.hits, screened.quoted, image=question.image)

        return self.router().run(pack, question.model, vision=question.image is not None)


class Generation:
    """The answer as the first model of the route that answers writes it, drawn once the model
    server has a turn free. After iterating: `choice` (who answered), `waited` (seconds in the
    queue) and `reply` (what the model wrote, before the output shield redacted anything)."""

    def __init__(self, fallback: Fallback, queue: ModelQueue, on_wait: WaitCallback | None, parent=None):
        self.fallback = fallback
        self.queue = queue
        self.on_wait = on_wait
        self.parent = parent  # the answer's span: this one is read later, outside the call that made it
        self.waited = 0.0
        self.pieces = 0  # streamed pieces of the answer: a token each from llama.cpp, vLLM and Ollama
        self._written: list[str] = []

    @property
    def reply(self) -> str:
        return "".join(self._written)

    @property
    def choice(self):
        return self.fallback.choice

    def __iter__(self) -> Iterator[str]:
        span = telemetry.start("docstack.generate", self.parent)
        try:
            with self.queue.turn(self.on_wait) as waited:
                self.waited = waited
                for piece in self.fallback:
                    self.pieces += 1
                    self._written.append(piece)
                    yield piece
        except BaseException as exc:
            span.fail(exc)
            raise
        finally:
            span.set_attributes({"gen_ai.response.model": self.choice.spec.stack_id if self.choice else None,
                                 "gen_ai.usage.output_tokens": self.pieces, "docstack.queue.wait_seconds": self.waited})
            span.end()


class Generate:
    """Generation through the Llama Stack server, one turn at a time where the model server takes
    one request at a time."""

    def __init__(self, chat: Chat, queue: ModelQueue, answer_tokens: int, temperature: float = 0.0):
        self.chat = chat
        self.queue = queue
        self.answer_tokens = answer_tokens
        self.temperature = temperature

    def run(self, route: Route, on_wait: WaitCallback | None = None, parent=None) -> Generation:
        fallback = Fallback(route, lambda choice: self.chat(choice.spec, choice.prompt.messages, self.answer_tokens,
                                                             self.temperature))
        return Generation(fallback, self.queue, on_wait, parent)

    def once(self, spec: ModelSpec, messages: list[dict], max_tokens: int,
             on_wait: WaitCallback | None = None) -> Iterator[str]:
        """One request to one model, outside any route (rewriting a follow-up question)."""
        with self.queue.turn(on_wait):
            yield from self.chat(spec, messages, max_tokens, 0.0)


class ScreenOutput:
    """The filter the answer streams through: checked sentence by sentence, redacted or stopped."""

    def __init__(self, guard: AnyGuard):
        self.guard = guard

    def run(self, screened: Screened) -> OutputFilter | PassThrough:
        return self.guard.output(screened.hits, screened.tokens)


class Cite:
    """[n] markers in the answer and the citations they stand for; a citation quotes its passage
    with what the output shield redacts removed."""

    def __init__(self, embed: Embed):
        self.embed = embed

    def run(self, text: str, hits: list[Hit], retrieved: Retrieved,
            output: OutputFilter | PassThrough) -> tuple[str, list[Citation], list[str]]:
        """The answer with its markers, its citations, and its sentences no passage supports."""
        text, citations, unsupported = cite(text, hits, self.embed, retrieved.vectors(hits))
        return text, [dataclasses.replace(c, text=output.scrub(c.text)) for c in citations], unsupported


class Ground:
    """Whether the answer says something its passages hold (docstack.rag.grounding). An answer
    that does not is not given as one: it abstains, the model's reply kept as unsupported."""

    def run(self, question: str, text: str, hits: list[Hit]) -> Grounding:
        return ground(question, text, [hit.text for hit in hits])


NOT_GROUNDED = "not answered: no passage holds what the model's reply says (it is listed as not found)"


# A question top-k retrieval cannot answer ("how many times...", "summarise chapter 4"), answered
# from the whole document (docstack.analysis.whole); None: the usual path.
WholeDocument = Callable[[Question], Answer | None]


class AnswerPipeline:
    def __init__(self, screen_input: ScreenInput, retrieve: Retrieve, screen_context: ScreenContext, pack: Pack,
                 generate: Generate, screen_output: ScreenOutput, cite: Cite, default_model: str = "",
                 whole_document: WholeDocument | None = None, small_talk: SmallTalk | None = None,
                 grounding: Ground | None = None):
        self.default_model = default_model  # named in a refusal, where no model was asked
        self.grounding = grounding  # None: every reply is given
        self.whole_document = whole_document
        self.small_talk = small_talk or SmallTalk()
        self.screen_input = screen_input
        self.retrieve = retrieve
        self.screen_context = screen_context
        self.pack = pack
        self.generate = generate
        self.screen_output = screen_output
        self.cite = cite

    def stream(self, question: Question, on_wait: WaitCallback | None = None) -> AnswerStream:
        """The answer as it is written; iterate it for text, then read `.answer`. With no passage
        close enough, docstack abstains without asking the model (which would answer from its
        own memory). Traced as a `docstack.answer` span with a span per stage."""
        trace = telemetry.start("docstack.answer", **{"docstack.k": question.k, "docstack.search.mode": question.mode,
                                                      "gen_ai.request.model": question.model})
        try:
            with telemetry.current(trace):  # the retriever's span nests under it
                stream = self._stream(question, on_wait, trace)
        except BaseException as exc:
            trace.fail(exc)
            trace.end()
            raise
        return stream.observe(lambda answer, error: _traced(trace, answer, error))

    def _stream(self, question: Question, on_wait: WaitCallback | None, trace) -> AnswerStream:
        started = time.perf_counter()
        safety = SafetyReport()
        with telemetry.span("docstack.shield.input", trace) as span:
            verdict = self.screen_input.run(question)
            span.set_attributes({"docstack.safety.action": verdict.action,
                                 "docstack.safety.category": verdict.category})
        safety.record(verdict)
        if verdict.blocked:
            return _refused(verdict, safety, question.model or self.default_model, started)
        reply = self.small_talk.run(question.text) if question.image is None else None
        if reply is not None:  # "hi" is greeted back, not answered with "not in the documents"
            trace.set_attribute("docstack.small_talk", True)
            return _replied(reply, safety, started)
        whole = self.whole_document(question) if self.whole_document else None
        if whole is not None:
            return self._whole(whole, safety, started, trace)
        retrieved = self.retrieve.run(question)
        with telemetry.span("docstack.shield.context", trace) as span:
            screened = self.screen_context.run(retrieved)
            span.set_attributes({"docstack.safety.dropped": len(screened.dropped),
                                 "docstack.safety.stripped": len(screened.stripped)})
        safety.dropped_chunks = len(screened.dropped)
        safety.redactions += len(screened.stripped)  # passages packed without their flagged sentences
        with telemetry.span("docstack.pack", trace) as span:
            route = self.pack.run(question, screened)
            first = route.choices[0] if route.choices else None
            span.set_attributes({"docstack.models": ",".join(c.spec.stack_id for c in route.choices),
                                 "gen_ai.usage.input_tokens": first.prompt.tokens if first else None})
        generation = self.generate.run(route, on_wait, trace)
        output = self.screen_output.run(screened)
        evidence = bool(screened.hits)  # none close enough, or all dropped by the context shield

        def finish(text: str, first_token: float | None) -> Answer:
            choice = generation.choice or route.choices[0]
            text = text.strip()
            safety.merge(output.report)
            abstained = not evidence or is_abstention(text, question.text)
            citations: list[Citation] = []
            unsupported: list[str] = []
            notices = list(route.notices)
            if not abstained and not safety.blocked:
                if self._grounded(question, generation.reply, choice.prompt.hits):
                    with telemetry.span("docstack.cite", trace) as span:
                        text, citations, unsupported = self.cite.run(text, choice.prompt.hits, retrieved, output)
                        span.set_attributes({"docstack.citations": len(citations),
                                             "docstack.unsupported": len(unsupported)})
                else:
                    trace.set_attribute("docstack.grounded", False)
                    text, unsupported, abstained = ABSTAIN_TEXT, [text], True
                    notices.append(NOT_GROUNDED)
            telemetry.record_tokens(choice.spec.stack_id, choice.prompt.tokens if evidence else 0, generation.pieces)
            return Answer(
                answer=text if evidence else ABSTAIN_TEXT, citations=citations, model=choice.spec.stack_id,
                abstained=abstained, seconds=round(time.perf_counter() - started, 3),
                first_token_seconds=None if first_token is None else round(first_token, 3),
                prompt_tokens=choice.prompt.tokens, context=choice.prompt.hits, notices=notices,
                safety=safety, wait_seconds=round(generation.waited, 3), unsupported=unsupported,
            )

        if not evidence:
            return AnswerStream(iter([ABSTAIN_TEXT]), finish)
        return AnswerStream(_spanned("docstack.shield.output", output.filter(generation), trace), finish)

    def _grounded(self, question: Question, reply: str, hits: list[Hit]) -> bool:
        """Judged on what the model wrote: a redacted address came from a passage too."""
        return self.grounding is None or self.grounding.run(question.text, reply, hits).grounded

    def _whole(self, whole: Answer, safety: SafetyReport, started: float, trace) -> AnswerStream:
        """An answer made from the whole document, through the output shield like any other."""
        output = self.screen_output.run(Screened(hits=[]))

        def finish(text: str, first_token: float | None) -> Answer:
            safety.merge(output.report)
            citations = [dataclasses.replace(c, text=output.scrub(c.text)) for c in whole.citations]
            return dataclasses.replace(whole, answer=text.strip(), citations=citations, safety=safety,
                                       seconds=round(time.perf_counter() - started, 3),
                                       first_token_seconds=None if first_token is None else round(first_token, 3))

        trace.set_attribute("docstack.whole_document", True)
        return AnswerStream(_spanned("docstack.shield.output", output.filter(iter([whole.answer])), trace), finish)


def _spanned(name: str, pieces: Iterable[str], parent) -> Iterator[str]:
    """`pieces` read within a span that starts at the first and ends after the last (a span started
    by hand: one made current here would stay current in the reader's code between pieces)."""
    span = telemetry.start(name, parent)
    try:
        yield from pieces
    except BaseException as exc:
        span.fail(exc)
        raise
    finally:
        span.end()


def _traced(trace, answer: Answer | None, error: BaseException | None) -> None:
    """The answer's span ended with what became of it; a blocked question counted."""
    if answer is None:
        trace.fail(error if not isinstance(error, GeneratorExit) else "the reader stopped early")
    else:
        report, summary = answer.safety, answer.safety.summary()
        trace.set_attributes({
            "gen_ai.response.model": answer.model, "docstack.abstained": answer.abstained,
            "docstack.citations": len(answer.citations), "docstack.safety.decision": summary["decision"],
            "docstack.safety.category": summary["category"], "docstack.safety.redactions": report.redactions,
            "docstack.first_token_seconds": answer.first_token_seconds,
            "docstack.queue.wait_seconds": answer.wait_seconds,
        })
        if report.blocked:
            telemetry.record_blocked(report.stage, report.category)
    trace.end()


def _replied(text: str, safety: SafetyReport, started: float) -> AnswerStream:
    """Small talk: a reply written without the documents or the model."""

    def finish(_text: str, first_token: float | None) -> Answer:
        return Answer(answer=text, citations=[], model="", abstained=False,
                      seconds=round(time.perf_counter() - started, 3), first_token_seconds=first_token, safety=safety,
                      notices=["small talk: answered without searching the documents"])

    return AnswerStream(iter([text]), finish)


def _refused(verdict: Verdict, safety: SafetyReport, model: str, started: float) -> AnswerStream:
    """A blocked question: the refusal names the stage and category; the stack is never called."""
    text = refusal(verdict.stage, verdict.category)

    def finish(_text: str, first_token: float | None) -> Answer:
        return Answer(answer=text, citations=[], model=model, abstained=False,
                      seconds=round(time.perf_counter() - started, 3), first_token_seconds=first_token, safety=safety)

    return AnswerStream(iter([text]), finish)
