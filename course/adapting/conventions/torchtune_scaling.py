"""torchtune's Llama 3.1 scaling: ``Llama3ScaledRoPE`` (made by course.adapting.conventions.torchtune)."""
from course.adapting.conventions.torchtune import adapt  # noqa: F401 - it reads Llama3ScaledRoPE when found
