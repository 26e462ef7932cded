"""First-step checks of the networks' outputs, so a contract broken by a plugin fails naming it.

During the first training step every network is watched through a forward hook:

- every network must return a tensor (a network that declares ``multiple_outputs = True`` may return
  a tuple of tensors; the first is the one checked);
- a generator's output must be images ``[B, 3, H, W]``: a noise-to-image generator (one with
  ``noise_size``) at the size of the data's images, an image-to-image generator at the size of its
  input.

Otherwise the mistake would surface later, deep inside the algorithm or a loss ("mat1 and mat2
shapes cannot be multiplied"), blaming the algorithm. The hooks are removed after that step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from ganforge.core.errors import PluginCodeError
from ganforge.core.registry import Component

if TYPE_CHECKING:
    from ganforge.train.session import TrainRun

TENSOR_HINT = ("a generator returns images [B, 3, H, W]; a discriminator returns scores [B, ...] "
               "(a network that returns a tuple of tensors declares `multiple_outputs = True`)")


def _shape(x: Any) -> str:
    return str(list(x.shape)) if isinstance(x, Tensor) else type(x).__name__


def main_output(module: nn.Module, output: Any) -> Any:
    """The output a network's contract is about: the first element of the tuple a
    ``multiple_outputs`` network returns, else the output itself."""
    if getattr(module, "multiple_outputs", False) and isinstance(output, (tuple, list)):
        if output and all(isinstance(o, Tensor) for o in output):
            return output[0]
    return output


def check_output(comp: Component, role: str, module: nn.Module, inputs: tuple, output: Any,
                 image_size: tuple[int, int] | None) -> None:
    """Raise a :class:`PluginCodeError` naming ``comp`` when ``output`` breaks its contract."""
    output = main_output(module, output)
    if not isinstance(output, Tensor):
        raise PluginCodeError(
            f"{comp.label} returned a {type(output).__name__} from forward (as '{role}'), not a tensor",
            hint=TENSOR_HINT,
        )
    if comp.kind != "generator":
        return
    noise = hasattr(module, "noise_size")
    source = inputs[0] if inputs and isinstance(inputs[0], Tensor) else None
    if noise:
        expected, why = image_size, "the data's images are {}x{}"
    elif source is not None and source.dim() == 4:
        expected, why = tuple(source.shape[-2:]), f"its input is {_shape(source)}"
    else:
        expected, why = None, ""
    images = output.dim() == 4 and output.shape[1] == 3
    if images and (expected is None or tuple(output.shape[-2:]) == tuple(expected)):
        return
    kind = "a noise-to-image" if noise else "an image-to-image"
    given = f" for noise {_shape(source)}" if noise and source is not None else ""
    batch = output.shape[0] if output.dim() > 0 else "B"
    if expected is None:
        problem = f"not images [{batch}, 3, H, W]"
    else:
        problem = f"but {why.format(*expected)}: it must return [{batch}, 3, {expected[0]}, {expected[1]}]"
    hint = ("a noise-to-image generator draws images at the data's image size (its image_size option follows "
            "data.image_size unless the recipe sets it)" if noise
            else "an image-to-image generator returns images the size of its input")
    raise PluginCodeError(
        f"{comp.label}, {kind} generator (role '{role}'), returned {_shape(output)}{given}, {problem}",
        hint=hint,
    )


def watch_outputs(nets: Mapping[str, tuple[Component, nn.Module]],
                  image_size: tuple[int, int] | None) -> list[RemovableHandle]:
    """Install the output checks on ``nets`` (role -> (component, plain module)); returns the hook
    handles, which the caller removes after the step."""
    handles = []
    for role, (comp, module) in nets.items():
        def hook(module, inputs, output, comp=comp, role=role):
            check_output(comp, role, module, inputs, output, image_size)

        handles.append(module.register_forward_hook(hook))
    return handles


def data_image_size(run: "TrainRun") -> tuple[int, int] | None:
    """(height, width) of the data's images: the size its first item has (what discriminators see),
    else the dataset's declared ``image_size``."""
    try:
        for images in run.fixed_batch(1).values():
            if isinstance(images, Tensor) and images.dim() == 4:
                return int(images.shape[-2]), int(images.shape[-1])
    except Exception:  # noqa: BLE001 - a dataset problem is reported by the step itself
        pass
    size = getattr(getattr(run, "data_info", None), "image_size", None)
    return (int(size), int(size)) if size else None


def check_outputs_once(run: "TrainRun") -> list[RemovableHandle]:
    """For the first step of ``run``: watch every network's output (see the module docstring)."""
    nets = {role: (comp, run.unwrap(role)) for role, comp in run.role_components.items()}
    return watch_outputs(nets, data_image_size(run))
