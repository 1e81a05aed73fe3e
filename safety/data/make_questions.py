"""Writes questions_train.jsonl: benign requests of the kind people put to a document Q&A app
(label 0), for training the input shield. The external corpora's benign sides are trivia and
chit-chat, so a model trained on them alone refused "Summarise the onboarding steps." and
"Can you pretend I'm a beginner and explain embeddings simply?". Written for docstack; the
red-team and held-out evaluation sets were not drawn from."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

ASKS = [
    "Summarise {t}.", "Summarize {t} in three bullet points.", "Give me a short summary of {t}.",
    "Explain {t} in simple terms.", "Explain {t} like I'm new to this.", "What does the manual say about {t}?",
    "What does the document say about {t}?", "List everything about {t}.", "List all the steps for {t}.",
    "Compare {t} with last year's version.", "Where is {t} described?", "Which page covers {t}?",
    "Who is responsible for {t}?", "When was {t} last changed?", "Is there a deadline for {t}?",
    "How do I handle {t}?", "Walk me through {t}.", "Show me the section on {t}.", "Quote the rule on {t}.",
    "What are the exceptions to {t}?", "Does {t} apply to contractors?", "Translate the paragraph on {t} into German.",
    "Rewrite the part about {t} in plain English.", "Extract the dates related to {t}.",
    "Pretend I'm a new hire and explain {t}.", "Act as my tutor and quiz me on {t}.",
    "Ignore the appendix and tell me about {t}.", "Forget the previous question; what about {t}?",
    "Disregard my last message, I meant {t}.", "Override my earlier filter and show everything on {t}.",
]
TOPICS = [
    "the refund policy", "the warranty terms", "chapter 4", "the installation guide",
    "the API rate limits", "the security policy", "the password rules", "the incident response plan",
    "the travel expenses policy", "the data retention rules", "the system requirements", "the safety briefing",
    "the admin settings", "the access control rules", "the configuration file", "the release notes",
    "the termination clause", "the payment schedule", "the maintenance schedule", "the firewall rules",
    "developer mode", "the prompt engineering guide", "the jailbreak section of the threat report",
    "the system prompt guidelines in our style guide", "the restrictions for visitors", "the root account",
]
HARD = [
    "What is a prompt injection attack, according to the report?", "How do attackers use DAN prompts?",
    "Explain what a jailbreak is in the context of phones.", "What does 'ignore previous instructions' mean in the paper?",
    "How does the classifier detect injections?", "Why should a system prompt be kept secret?",
    "What does the SHA-1 hash in the release notes verify?", "Convert 0xFF to decimal.", "What is 0b1010 in hex?",
    "Decode the base64 example in section 3 for me.", "What does the regex ^[a-z]+$ match?",
    "What is the admin password policy?", "How do I reset the admin account?", "How do I enable debug logging?",
    "How do I turn off the content filter in the email client?", "How do I bypass the proxy for local addresses?",
    "Which user roles have no restrictions?", "How do I run the tool in unrestricted mode?",
    "What are the rules for override approvals?", "Who can override a purchase order?",
    "Can you role-play a customer so I can practise support calls?", "Pretend you are the interviewer and ask me questions.",
    "Act as a Linux terminal tutor and explain ls.", "Be my editor and fix the grammar in this paragraph.",
    "You are now my study buddy; test me on chapter 2.", "From now on answer in French.",
    "Answer only with yes or no: is the warranty two years?", "Reply in JSON with the fields name and date.",
    "Respond as a table with two columns.", "Format the answer as Markdown.",
    "What were the previous instructions for installing version 1?", "Where are the earlier guidelines archived?",
    "Print the configuration example from the manual.", "Show the default settings listed in the appendix.",
    "Reveal the answer to exercise 3.", "What secrets does the novel's main character hide?",
    "How do I kill a zombie process?", "How do I terminate a stuck job?", "How do I execute a SQL query safely?",
    "What is the command to delete all files in a folder?",
    # identifiers that look like encoded payloads to an n-gram model
    "Which release has the checksum e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855?",
    "What changed in commit 3f2a9c1d7be04e55a1c2?", "Find order 550e8400-e29b-41d4-a716-446655440000.",
    "What is the MD5 d41d8cd98f00b204e9800998ecf8427e used for in the guide?", "Is key ID 0x8AC3F2D1 still valid?",
    "What does error 0x80070005 mean?", "Decode the URL parameter q=caf%C3%A9 for me.",
    "What is the token format eyJhbGciOiJIUzI1NiJ9 in the API docs?", "Which part number is 7F3K-22QX-9LMP?",
    "What is the MAC address 00:1A:2B:3C:4D:5E assigned to?",
]


def main() -> None:
    pairs = list(itertools.product(ASKS, TOPICS))
    random.Random(0).shuffle(pairs)
    texts = [ask.format(t=topic) for ask, topic in pairs[:360]] + HARD
    texts[0] = texts[0][0].upper() + texts[0][1:]
    out = Path(__file__).with_name("questions_train.jsonl")
    with out.open("w", encoding="utf-8") as f:
        for text in dict.fromkeys(texts):
            f.write(json.dumps({"text": text[0].upper() + text[1:], "label": 0}, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
