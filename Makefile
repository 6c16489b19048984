# The two commands of the README. Everything else lives in scripts/.
.PHONY: run test build clean lint bench
run:
	@scripts/run
test:
	@scripts/test
build:
	@scripts/bootstrap && scripts/build release
lint:
	@scripts/lint-openapi
clean:
	rm -rf build build-asan tests/out
