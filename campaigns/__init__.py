"""What is sent and when: campaign and step definitions, the bundled library, enrollment and
"what is due", branching by segment. Knows nothing about how mail leaves the machine."""

from pathlib import Path

BUNDLED_LIBRARY = Path(__file__).parent / "library"
