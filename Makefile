# The two commands of the README. Everything else lives in scripts/.
.PHONY: run test build clean lint bench fuzz
run:
	@scripts/run
test:
	@scripts/test
build:
	@scripts/bootstrap && scripts/build release
lint:
	@scripts/lint-openapi
fuzz:
	@scripts/bootstrap && scripts/fuzz 60
clean:
	rm -rf build build-asan build-fuzz tests/out
