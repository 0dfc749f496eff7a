"""Where scheduled steps wait until they are due. A session store names its own step store
(``SessionStore.step_store``): Redis keeps steps in Redis, the file driver in a file beside the
sessions, every other driver in this process."""
from botkit.storage.steps.base import StepStore
from botkit.storage.steps.memory import MemoryStepStore
from botkit.storage.steps.step import Step

__all__ = ["MemoryStepStore", "Step", "StepStore"]
