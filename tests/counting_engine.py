"""The real HF generation engine, counting the sequences it generates (resume tests: what was drawn again)."""

from eval.generate import HFEngine


class CountingEngine(HFEngine):
    generated = 0

    def generate(self, texts, seeds, sampling):
        self.generated += len(texts)
        return super().generate(texts, seeds, sampling)
