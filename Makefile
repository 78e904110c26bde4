# Every target runs through uv; `make pr` is what CI runs.
SHELL := /bin/bash
.DEFAULT_GOAL := help
# uv from PATH, else our own copy in .cache (local/bootstrap_uv.py: standard library only, so it
# works on Debian's externally managed Python and inside an activated virtualenv).
UV := $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.cache/uv/uv)
# The Lambda runtime ships boto3 and its dependencies; the layer must not carry them.
RUNTIME_PROVIDED := boto3 botocore s3transfer jmespath python-dateutil six urllib3
LAYER_REQUIREMENTS := layers/core/requirements.txt
CHAT_REQUIREMENTS := layers/chat/requirements.txt
# Pinned: cfn-lint's runtime-deprecation data changes between releases (see shared notes).
SAM_CLI := aws-sam-cli==1.170.0
CFN_LINT := cfn-lint==1.58.0
SAM_ENV := AWS_DEFAULT_REGION=us-east-1 SAM_CLI_TELEMETRY=0

.PHONY: help dev seed build deploy token openapi test unit lint typecheck validate bench layer-requirements pr clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-20s %s\n", $$1, $$2}'

$(UV):
	python3 local/bootstrap_uv.py $@

.venv: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen
	@touch .venv

dev: .venv ## Start DynamoDB Local + the API on 127.0.0.1:8000 and print a token (no AWS, no model key)
	$(UV) run --frozen python -m chat_sessions_local.dev

seed: .venv ## Create the sample events' data in a running `make dev` (for sam local invoke)
	$(UV) run --frozen python -m chat_sessions_local.seed

token: .venv ## Print a development token: make token USER=alice
	@$(UV) run --frozen python -m chat_sessions_local.issuer $(or $(USER_ID),$(USER))

openapi: .venv ## Regenerate docs/openapi.json from the code
	$(UV) run --frozen python -m chat_sessions_local.openapi

test: .venv ## Run every test: moto unit suites, then the same suites on DynamoDB Local
	$(UV) run --frozen pytest

unit: .venv ## Only the moto-backed tests (no Java needed)
	$(UV) run --frozen pytest -m "not integration and not build"

lint: .venv ## ruff (lint + format check) and the layer requirements in sync with uv.lock
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	@diff -u $(LAYER_REQUIREMENTS) <($(MAKE) -s --no-print-directory layer-requirements-print) \
		|| (echo "$(LAYER_REQUIREMENTS) is stale: run 'make layer-requirements'" && exit 1)
	@for f in $(CHAT_REQUIREMENTS); do \
		diff -u $$f <($(MAKE) -s --no-print-directory chat-requirements-print) \
		|| (echo "$$f is stale: run 'make layer-requirements'" && exit 1); done

typecheck: .venv ## mypy --strict over layer, local tooling, bench and tests
	$(UV) run --frozen mypy .

validate: $(UV) ## sam validate --lint and cfn-lint on template.yaml (pinned; no AWS account needed)
	$(SAM_ENV) $(UV) tool run --from $(SAM_CLI) sam validate --lint
	$(SAM_ENV) $(UV) tool run --from $(CFN_LINT) cfn-lint template.yaml

bench: .venv ## Measure round trips and capacity units; rewrites the table in docs/performance.md
	$(UV) run --frozen python -m bench.run

build: .venv ## The deployable artifacts in .aws-sam/build, without Docker (sam build + bytecode; docs/deploy.md)
	$(UV) run --frozen python -m chat_sessions_local.build

deploy: build ## Deploy with samconfig.toml (AWS credentials; GUIDED=1 asks, PARAMS="K=V ..." overrides)
	SAM_CLI_TELEMETRY=0 $(UV) tool run --from $(SAM_CLI) sam deploy $(if $(GUIDED),--guided) \
		$(if $(PARAMS),--parameter-overrides $(PARAMS))

layer-requirements: .venv ## Regenerate the core and chat layers' requirements.txt from uv.lock
	$(MAKE) -s --no-print-directory layer-requirements-print > $(LAYER_REQUIREMENTS)
	for f in $(CHAT_REQUIREMENTS); do \
		$(MAKE) -s --no-print-directory chat-requirements-print > $$f; done

.PHONY: layer-requirements-print chat-requirements-print
chat-requirements-print:
	@$(UV) export --frozen --no-dev --extra chat --no-emit-project --no-hashes --no-header \
		--no-annotate $(foreach p,$(RUNTIME_PROVIDED),--no-emit-package $(p))

layer-requirements-print:
	@$(UV) export --frozen --no-dev --no-emit-project --no-hashes --no-header --no-annotate \
		$(foreach p,$(RUNTIME_PROVIDED),--no-emit-package $(p))

pr: lint typecheck validate test ## Everything CI runs

clean: ## Remove caches and build output (keeps the DynamoDB Local download)
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache .aws-sam
