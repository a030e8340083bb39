# Corpus locations. MLS: the folder holding mls_<language>/ (or mls_<language>_opus/) of the
# Multilingual LibriSpeech release (https://www.openslr.org/94/). Empty: stage 1 generates an
# MLS-shaped corpus with espeak-ng (--corpus_size ci|demo|large) and uses it instead.
MLS=
