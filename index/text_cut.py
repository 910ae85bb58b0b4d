"""Cut texts to the part the model reads, before tokenising them whole.

Tokenizers truncate only after tokenising the whole text, so one 5 MB text costs half a minute of
CPU and hundreds of MB of memory for the 256 tokens that are kept. `TextCutter` finds a prefix
whose truncated tokens are provably those of the whole text, by tokenising growing prefixes:

A tokenizer normalises characters one by one (lower case, accents, CJK spacing, control
characters), splits the result into words (on whitespace and punctuation) and tokenises each word
on its own. So cutting a text changes at most the tokens of the word the cut falls in, the prefix's
last word. If a word starts after the word of the last token that survives truncation, that token
and every one before it come from words the cut did not touch: the model gets the same tokens, so
the same vector. Where no such word shows yet, the prefix doubles, up to a ceiling of
`CEILING_CHARS_PER_TOKEN` characters per token kept, where the text is cut without that proof.
A text whose words and whitespace runs are all shorter than 256 characters is always cut with
the proof (its first kept + 1 words, each with the run before it, fit under the ceiling); one
that is not (one endless word, megabytes of spaces) is not prose, and would otherwise cost what
the whole text costs.
"""

from collections.abc import Sequence

from tokenizers import Tokenizer

FIRST_WINDOW_CHARS_PER_TOKEN = 8
"""The first prefix tried holds this many characters per token kept (English runs at about 4.5),
so that ordinary long texts are cut after one look at a prefix."""
CEILING_CHARS_PER_TOKEN = 512
"""No text is tokenised beyond this many characters per token kept (see the module docstring)."""


class TextCutter:
    """Cuts texts for a model that reads `max_tokens` tokens (special tokens included)."""

    def __init__(self, tokenizer: Tokenizer, max_tokens: int) -> None:
        # A copy without truncation or padding (the model's may carry either, fixed): it must
        # see every token of a prefix, and the caller's tokenizer stays as it is.
        self._tokenizer = Tokenizer.from_str(tokenizer.to_str())
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self._kept = max_tokens - self._tokenizer.num_special_tokens_to_add(is_pair=False)
        self._first_window = FIRST_WINDOW_CHARS_PER_TOKEN * max_tokens
        self._ceiling = CEILING_CHARS_PER_TOKEN * max_tokens

    def cut(self, text: str) -> str:
        """The shortest tried prefix of `text` whose tokens kept by truncation are the text's
        (or the ceiling's prefix, see the module docstring)."""
        size = self._first_window
        while size < len(text):
            prefix = text[:size]
            if size >= self._ceiling or self._proven(prefix):
                return prefix
            size = min(2 * size, self._ceiling)
        return text

    def _proven(self, prefix: str) -> bool:
        words = self._tokenizer.encode(prefix, add_special_tokens=False).word_ids
        return len(words) > self._kept and _later_word(words, self._kept - 1)

    def cut_all(self, texts: Sequence[str]) -> list[str]:
        return [self.cut(text) for text in texts]


def _later_word(words: list[int | None], last_kept: int) -> bool:
    """Whether a word starts after the word of token `last_kept` (so that word is complete)."""
    word = words[last_kept]
    return word is not None and any(w is not None and w > word for w in words[last_kept + 1 :])
