"""musicapi-async: the asyncio/trio Python SDK for MusicAPI (musicapi.ai).

>>> import anyio
>>> from musicapi_async import MusicAPI
>>> async def main() -> None:
...     async with MusicAPI() as client:                    # key from $MUSICAPI_KEY
...         ref = await client.sonic.create(mv="sonic-v5",
...                                         gpt_description_prompt="lofi hip hop")
...         print((await client.sonic.get_task(ref)).status)
>>> anyio.run(main)  # doctest: +SKIP
"""

from __future__ import annotations

from ._batch import (
    BatchConflictError,
    BatchEvent,
    BatchInputError,
    BatchJob,
    BatchJobResult,
    BatchJobState,
    BatchJournalError,
    BatchReport,
    read_batch_jobs,
    run_batch,
)
from ._client import MusicAPI
from ._constants import DEFAULT_BASE_URL, SONIC_MODELS, SONIC_TASK_TYPES, __version__
from ._credits import CreditsResource
from ._download import DownloadError, DownloadFormat, ProgressCallback, safe_filename
from ._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    GoneError,
    InsufficientCreditsError,
    LimiterError,
    MusicAPIError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseValidationError,
    ResultNotReadyError,
    ServerError,
    TaskFailedError,
    UpstreamTimeoutError,
)
from ._models import (
    AlignedLyrics,
    AlignedWord,
    Batch,
    BatchSubmission,
    Bpm,
    Clip,
    ClipState,
    Credits,
    DownloadLinks,
    GeneratedLyrics,
    Midi,
    Persona,
    Task,
    TaskFamily,
    TaskRef,
    TaskStatus,
    UploadedClip,
    UpsampledTags,
    Vox,
    WavFile,
)
from ._nuro import Nuro
from ._poller import AsCompleted, ProgressState, TaskProgress, WaitTimeoutError
from ._producer import PRODUCER_DOWNLOAD_FORMATS, Producer
from ._ratelimit import BucketStatistics, Limiter, Priority, TokenBucket
from ._retry import RetryEvent, RetryPolicy
from ._sonic import DOWNLOAD_FORMATS, CreateOptions, GenerationOptions, Sonic, SonicCreate
from ._webhooks import (
    WebhookEvent,
    WebhookReceiver,
    WebhookResponse,
    WebhookVerificationError,
    sign_webhook,
    verify_webhook,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "DOWNLOAD_FORMATS",
    "PRODUCER_DOWNLOAD_FORMATS",
    "SONIC_MODELS",
    "SONIC_TASK_TYPES",
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AlignedLyrics",
    "AlignedWord",
    "AsCompleted",
    "AuthenticationError",
    "BadRequestError",
    "Batch",
    "BatchConflictError",
    "BatchEvent",
    "BatchInputError",
    "BatchJournalError",
    "BatchJob",
    "BatchJobResult",
    "BatchJobState",
    "BatchReport",
    "BatchSubmission",
    "Bpm",
    "BucketStatistics",
    "Clip",
    "ClipState",
    "CreateOptions",
    "Credits",
    "CreditsResource",
    "DownloadError",
    "DownloadFormat",
    "DownloadLinks",
    "GeneratedLyrics",
    "GenerationOptions",
    "GoneError",
    "InsufficientCreditsError",
    "LimiterError",
    "Limiter",
    "Midi",
    "MusicAPI",
    "MusicAPIError",
    "NotFoundError",
    "Nuro",
    "PermissionDeniedError",
    "Persona",
    "Priority",
    "Producer",
    "ProgressCallback",
    "ProgressState",
    "RateLimitError",
    "ResponseValidationError",
    "ResultNotReadyError",
    "RetryEvent",
    "RetryPolicy",
    "ServerError",
    "Sonic",
    "SonicCreate",
    "Task",
    "TaskFailedError",
    "TaskFamily",
    "TaskProgress",
    "TaskRef",
    "TaskStatus",
    "TokenBucket",
    "UploadedClip",
    "UpsampledTags",
    "UpstreamTimeoutError",
    "Vox",
    "WaitTimeoutError",
    "WavFile",
    "WebhookEvent",
    "WebhookReceiver",
    "WebhookResponse",
    "WebhookVerificationError",
    "__version__",
    "read_batch_jobs",
    "run_batch",
    "safe_filename",
    "sign_webhook",
    "verify_webhook",
]
