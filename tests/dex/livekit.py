"""Set-up for the live DEX tests: a BTC-like V2 pool on the deployed Uniswap contracts, the trader's
balances, and the TOML that points ``arb run --live`` at the local JSON-RPC node and CEX venue.

The pool trades two fresh ERC-20 test tokens, ``WBTC`` and ``USDT`` (18 decimals each), that the
configuration maps to the CEX book ``binance BTC/USDT`` (real recorded frames, about 61,800
USDT), at a price chosen by the test so that the gap is clear.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dex.chainenv import DEADLINE, MAX_UINT, Env, _deploy

E18 = 10**18


@dataclass
class BtcPool:
    wbtc: str
    usdt: str
    pair: str


async def deploy_btc_pool(env: Env, price: float, btc: int = 100) -> BtcPool:
    """A uniswap_v2 WBTC/USDT pair at ``price`` with ``btc`` WBTC of liquidity; the trader is funded
    with 5 WBTC and 500,000 USDT and has approved the router once (a set-up, not a trade cost)."""
    w3, dep = env.w3, env.deployer
    wbtc = await _deploy(w3, dep, "ERC20Fixed", "Wrapped BTC", "WBTC", 10**9 * E18, dep)
    usdt = await _deploy(w3, dep, "ERC20Fixed", "Tether USD", "USDT", 10**15 * E18, dep)
    router = env.c["uniswap_v2_router"]
    for t in (wbtc, usdt):
        await env.send(t.functions.approve(router.address, MAX_UINT))
    await env.send(router.functions.addLiquidity(
        wbtc.address, usdt.address, btc * E18, int(btc * price) * E18, 0, 0, dep, DEADLINE))
    await env.send(wbtc.functions.transfer(env.trader, 5 * E18))
    await env.send(usdt.functions.transfer(env.trader, 500_000 * E18))
    for t in (wbtc, usdt):
        await env.send(t.functions.approve(router.address, MAX_UINT), sender=env.trader)
    pair = await env.c["uniswap_v2_factory"].functions.getPair(wbtc.address, usdt.address).call()
    return BtcPool(str(wbtc.address), str(usdt.address), str(pair))


async def deploy_token(env: Env, name: str, symbol: str) -> str:
    """A fresh 18-decimal ERC-20 held by the deployer, approved for both V2 routers."""
    tok = await _deploy(env.w3, env.deployer, "ERC20Fixed", name, symbol, 10**15 * E18, env.deployer)
    for dex in ("uniswap_v2", "sushiswap"):
        await env.send(tok.functions.approve(env.c[f"{dex}_router"].address, MAX_UINT))
    return str(tok.address)


async def add_v2_liquidity(env: Env, dex: str, a: str, b: str, amount_a: int, amount_b: int) -> None:
    """A ``dex`` (uniswap_v2 or sushiswap) pair of ``a``/``b`` with that much of each (raw units)."""
    router = env.c[f"{dex}_router"]
    await env.send(router.functions.addLiquidity(a, b, amount_a, amount_b, 0, 0, env.deployer, DEADLINE))


async def balances(env: Env, pool: BtcPool) -> dict[str, int]:
    """The trader's raw balances on chain: WBTC, USDT and the native coin (wei)."""
    return {
        "WBTC": await env.balance(pool.wbtc, env.trader),
        "USDT": await env.balance(pool.usdt, env.trader),
        "ETH": int(await env.w3.eth.get_balance(env.trader)),
    }


def dex_settings(env: Env, rpc_url: str, pools: list[dict[str, Any]], **top: Any) -> dict[str, Any]:
    """The ``dex`` settings section (as a dict) for the deployed uniswap_v2, sushiswap and uniswap_v3."""
    venues = [
        {"name": name, "kind": spec.kind, "chain_id": env.chain_id, "factory": spec.factory, "router": spec.router,
         "fee_bps": spec.fee_bps}
        for name, spec in env.specs.items()
    ]
    chain = {"chain_id": env.chain_id, "rpc_url": rpc_url, "poll_interval_s": 0.1,
             "native_prices": {"USDT": 3000.0},
             "receipt_timeout_s": 10.0, "timeout_s": 5.0}
    return {"chains": [chain], "venues": venues, "pools": pools, "min_profit_bps": 5.0,
            "evaluate_interval_ms": 20.0, **top}


def toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml(v)}" for k, v in value.items()) + " }"
    return repr(value)


def write_config(path: Path, dex: dict[str, Any], cex: str = "") -> Path:
    """A TOML file: ``cex`` verbatim (CEX venue overrides), then the dex section."""
    lines = [cex, "[dex]"]
    lines += [f"{k} = {toml(v)}" for k, v in dex.items() if not isinstance(v, list)]
    for table in ("chains", "venues", "pools"):
        for item in dex.get(table, []):
            lines.append(f"[[dex.{table}]]")
            lines += [f"{k} = {toml(v)}" for k, v in item.items()]
    path.write_text("\n".join(lines) + "\n")
    return path
