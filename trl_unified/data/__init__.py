"""The dataset format: validation and preparation (``preparation``), and the interleaved collator (``collator``)."""
