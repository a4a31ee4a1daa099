"""A Cloud Storage server for tests, in memory on 127.0.0.1: gcp-storage-emulator, plus the
`x-goog-generation` header on downloads that tensorstore (orbax's storage layer) requires.

    python tests/helpers/gcs_emulator.py PORT BUCKET

Clients reach it through STORAGE_EMULATOR_HOST (gcsfs, google-cloud-storage),
CLOUD_STORAGE_EMULATOR_ENDPOINT (array_record) and TENSORSTORE_GCS_HTTP_URL (tensorstore); see
`gcs_env`.
"""

from __future__ import annotations

import sys
import time
from http import HTTPStatus

from gcp_storage_emulator import server
from gcp_storage_emulator.handlers import objects


def gcs_env(port: int) -> dict[str, str]:
  """Environment that points every Cloud Storage client jaxlm uses at the emulator."""
  url = f"http://127.0.0.1:{port}"
  return {"STORAGE_EMULATOR_HOST": url, "CLOUD_STORAGE_EMULATOR_ENDPOINT": url,
          "TENSORSTORE_GCS_HTTP_URL": url, "GOOGLE_AUTH_TOKEN_FOR_TESTING": "emulator",
          "GOOGLE_CLOUD_PROJECT": "jaxlm-test",
          # gcsfs would otherwise ask the emulator (over gRPC) whether the bucket is hierarchical.
          "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false"}


_download = objects.download


def _download_with_generation(request, response, storage, *args, **kwargs):
  _download(request, response, storage, *args, **kwargs)
  if response.status in (HTTPStatus.OK, HTTPStatus.PARTIAL_CONTENT):
    obj = storage.get_file_obj(request.params["bucket_name"], request.params["object_id"])
    response["x-goog-generation"] = obj["generation"]
    response["x-goog-metageneration"] = obj["metageneration"]


def main(port: int, bucket: str) -> None:
  objects.download = _download_with_generation  # `objects.get` calls it for ?alt=media
  server.HANDLERS = tuple(
    (pattern, {method: _download_with_generation if handler is _download else handler
               for method, handler in handlers.items()})
    for pattern, handlers in server.HANDLERS)
  server.create_server("127.0.0.1", port, in_memory=True, default_bucket=bucket).start()
  print("ready", flush=True)
  while True:
    time.sleep(3600)


if __name__ == "__main__":
  main(int(sys.argv[1]), sys.argv[2])
