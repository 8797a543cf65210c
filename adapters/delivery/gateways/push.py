"""Channel "push" with both native providers: FCM or APNs per the customer's push tokens.

One notification per offer, to the device the customer used last: the providers are tried in the
order of their newest token, and the first one that does not dead-letter decides (sent, or
retry: the same provider is tried again later, never a second device in the meantime). A
provider whose tokens were all refused (dead letter `no_push_token`, or any dead letter) hands
over to the next. Sending to every provider at once would show the offer twice to someone with a
phone and a tablet, and a retry of one could not be told apart from a new notification on the
other."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from adapters.delivery.gateways.base import Gateway, Message, Result


class PushRouter:
    name = "push"

    def __init__(
        self,
        providers: Mapping[str, Gateway],  # "fcm" / "apns" -> gateway
        providers_of: Callable[[str], Awaitable[list[str]]],  # newest token's provider first
    ) -> None:
        self.providers = dict(providers)
        self.providers_of = providers_of

    async def send(self, msg: Message) -> Result:
        last: Result | None = None
        for provider in await self.providers_of(msg.customer_id):
            gw = self.providers.get(provider)
            if gw is None:  # e.g. APNs tokens while only FCM is configured
                last = Result.dead(f"no_gateway_for_{provider}")
                continue
            res = await gw.send(msg)
            if res.outcome != "dead":
                return res
            last = res
        return last or Result.dead("no_push_token")

    async def aclose(self) -> None:
        for gw in self.providers.values():
            await gw.aclose()
