"""`t2i serve`: the shipped or given pipelines behind an HTTP server that speaks the OpenAI Images
API (`POST /v1/images/generations`, `GET /v1/models`), with a page at `/` to try them.

- `app.py`: the FastAPI app: request checking, errors in the API's own shape, responses;
- `jobs.py`: one bounded queue and one worker per model, so each model generates one request at
  a time and a full queue is refused rather than left to grow;
- `page.html`: the page, self-contained (no external scripts, fonts or styles).
"""
