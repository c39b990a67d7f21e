"""Minimal ABIs of the contracts the DEX venues call, taken verbatim from the official npm builds.

Only the functions and events used here, so the runtime does not need the npm packages. The
entries are data, kept in ``abi.json`` beside this module; ``tests/test_dex_*`` check each one
against ``@uniswap/*`` and ``@openzeppelin/contracts`` (``internalType`` dropped: it is compiler
metadata the ABI codec ignores).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

Abi = list[dict[str, Any]]

_DATA: dict[str, Abi] = json.loads((Path(__file__).with_name("abi.json")).read_text())

ERC20: Abi = _DATA["ERC20"]
WETH9: Abi = _DATA["WETH9"]
V2_FACTORY: Abi = _DATA["V2_FACTORY"]
V2_PAIR: Abi = _DATA["V2_PAIR"]
V2_ROUTER: Abi = _DATA["V2_ROUTER"]
V3_FACTORY: Abi = _DATA["V3_FACTORY"]
V3_POOL: Abi = _DATA["V3_POOL"]
V3_SWAP_ROUTER: Abi = _DATA["V3_SWAP_ROUTER"]
V3_QUOTER_V2: Abi = _DATA["V3_QUOTER_V2"]
# some tokens (MKR, SAI) return symbol()/name() as bytes32: tried when the string ABI fails to decode
ERC20_BYTES32_SYMBOL: Abi = _DATA["ERC20_BYTES32_SYMBOL"]

#: where each ABI comes from (the test compares against these npm artifacts)
ABI_SOURCES = {
    "ERC20": "@openzeppelin/contracts/build/contracts/ERC20.json",
    "WETH9": "@uniswap/v2-periphery/build/WETH9.json",
    "V2_FACTORY": "@uniswap/v2-core/build/UniswapV2Factory.json",
    "V2_PAIR": "@uniswap/v2-core/build/UniswapV2Pair.json",
    "V2_ROUTER": "@uniswap/v2-periphery/build/UniswapV2Router02.json",
    "V3_FACTORY": "@uniswap/v3-core/artifacts/contracts/UniswapV3Factory.sol/UniswapV3Factory.json",
    "V3_POOL": "@uniswap/v3-core/artifacts/contracts/UniswapV3Pool.sol/UniswapV3Pool.json",
    "V3_SWAP_ROUTER": "@uniswap/v3-periphery/artifacts/contracts/SwapRouter.sol/SwapRouter.json",
    "V3_QUOTER_V2": "@uniswap/v3-periphery/artifacts/contracts/lens/QuoterV2.sol/QuoterV2.json",
}
