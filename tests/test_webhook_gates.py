"""The sender's concurrency gate: a bound, first come first served, no slot lost to a
cancelled waiter."""

from __future__ import annotations

import asyncio

from tracker.services.webhook_gates import Gate


async def test_the_gate_bounds_holders_and_serves_waiters_in_order() -> None:
    gate = Gate(2)
    assert gate.try_enter() and gate.try_enter()
    assert not gate.try_enter()
    order: list[int] = []

    async def wait(n: int) -> None:
        await gate.enter()
        order.append(n)

    waiters = [asyncio.create_task(wait(n)) for n in range(3)]
    await asyncio.sleep(0)
    assert order == [] and not gate.try_enter()  # a newcomer does not overtake the queue
    gate.leave()
    await asyncio.sleep(0)
    assert order == [0]
    gate.leave()
    gate.leave()
    await asyncio.gather(*waiters)
    assert order == [0, 1, 2] and gate.free == 0
    for _ in range(2):
        gate.leave()
    assert gate.free == 2


async def test_a_cancelled_waiter_does_not_keep_a_slot() -> None:
    gate = Gate(1)
    assert gate.try_enter()
    first = asyncio.create_task(gate.enter())
    second = asyncio.create_task(gate.enter())
    await asyncio.sleep(0)
    first.cancel()  # cancelled while waiting
    await asyncio.sleep(0)
    gate.leave()  # goes to the second waiter
    await second
    gate.leave()
    assert gate.free == 1 and gate.try_enter()
    gate.leave()

    # handed a slot and cancelled in the same loop step: the slot is passed on
    assert gate.try_enter()
    third = asyncio.create_task(gate.enter())
    await asyncio.sleep(0)
    gate.leave()  # hands the slot to `third`...
    third.cancel()  # ...which is cancelled before it runs
    await asyncio.gather(third, return_exceptions=True)
    assert gate.free == 1
