"""Small talk: a message that is only a greeting, thanks or a goodbye gets a friendly reply, not
the abstention a search for "hi" would give (no passage is about "hi"). Only the whole message
counts: "hi, how many days of leave?" is a question and goes through retrieval as usual. The reply
is written here, without the model, so it costs nothing and states nothing a passage should back."""

from __future__ import annotations

import re

_GREETING = r"(?:hi|hello|hey|hiya|howdy|yo|greetings|good (?:morning|afternoon|evening|day)|hallo|bonjour|hola)"
_THANKS = r"(?:thanks|thank you|thank you very much|thanks a lot|many thanks|cheers|ty|thx)"
_BYE = r"(?:bye|goodbye|good bye|see you|see ya|bye bye)"
_HOW = r"(?:how are you|how are you doing|how is it going|what's up|whats up)"
_WHO = r"(?:who are you|what are you|what can you do|help)"
_TAIL = r"(?:\s+(?:there|all|again|docstack|bot|assistant|so much|a lot))*"


def _whole(pattern: str) -> re.Pattern:
    return re.compile(rf"^(?:{pattern}){_TAIL}$")


REPLIES = [
    (_whole(rf"{_GREETING}(?:\s+{_HOW})?|{_HOW}"),
     "Hello! Ask me anything about the documents in this collection and I will answer with the page "
     "each fact comes from."),
    (_whole(_THANKS), "You're welcome! Ask me anything else about your documents."),
    (_whole(_BYE), "Goodbye! Your documents will be here when you come back."),
    (_whole(_WHO), "I answer questions about the documents in this collection, citing the file and page "
                   "of each fact, and I say so when the documents do not hold the answer."),
]


class SmallTalk:
    """The reply to a message that is only small talk, or None for a real question."""

    def run(self, text: str) -> str | None:
        words = re.sub(r"[^\w\s']", " ", text.lower()).split()
        if not words or len(words) > 8:
            return None
        message = " ".join(words)
        return next((reply for pattern, reply in REPLIES if pattern.match(message)), None)
