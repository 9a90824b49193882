bench:
	scripts/bench.sh

test:
	scripts/test.sh

.PHONY: bench test
