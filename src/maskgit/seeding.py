"""One way to seed: how per-image random generators are derived, everywhere.

Every image of an inpainting run has its own generator, so a result does not depend on the batch
it was decoded in; `image_generator(seed, i)` is the i-th image's for a run seeded `seed` (the CLI,
the sweep), and `generators_from` splits one generator into several (the Python API, the sampler's
per-device copies, the guided decoder's training decodings).
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import torch


def image_generator(seed: int, index: int) -> torch.Generator:
    """The generator of the index-th input of a run seeded `seed`."""
    return torch.Generator().manual_seed(seed * 1_000_003 + index)


def generators_from(generator: torch.Generator, count: int, device: Optional[torch.device] = None
                    ) -> list[torch.Generator]:
    """`count` generators (on `device`, default the CPU) seeded by draws from `generator`."""
    seeds = torch.randint(0, 2**62, (count,), generator=generator).tolist()
    return [torch.Generator(device=device or "cpu").manual_seed(int(s)) for s in seeds]


def per_image_generators(generator: Union[None, torch.Generator, Sequence[torch.Generator]],
                         count: int) -> Optional[list[torch.Generator]]:
    """The Python API's `generator` argument as one generator per image: None stays None, one
    generator is split (`generators_from`), a sequence must hold one per image."""
    if generator is None:
        return None
    if isinstance(generator, torch.Generator):
        return generators_from(generator, count)
    generators = list(generator)
    if len(generators) != count:
        raise ValueError(f"got {len(generators)} generators for {count} images")
    return generators


def candidate_generators(generators: Optional[Sequence[torch.Generator]], count: int
                         ) -> list[Optional[list[torch.Generator]]]:
    """Per best-of-N candidate, one generator per image: candidate 0 uses the images' own (so its result
    is the one-candidate result), candidate c >= 1 one seeded by the (c+1)-th draw of a copy of each
    image's generator (its own stream; the images' generators themselves are not advanced). None: the
    global RNG for every candidate."""
    if generators is None:
        return [None] * count
    per_image = []
    for generator in generators:
        copy = torch.Generator(device=generator.device)
        copy.set_state(generator.get_state())
        seeds = torch.randint(0, 2**62, (count,), generator=copy).tolist()
        per_image.append([torch.Generator().manual_seed(int(s)) for s in seeds[1:]])
    return [list(generators)] + [[gens[c] for gens in per_image] for c in range(count - 1)]
