"""BLE beacon ranging: RSSI -> estimated distance -> proximity class. Pure.

A receiver hears a beacon at `rssi` dBm; the beacon's power at 1 m (`power_1m`: iBeacon's
"measured power"; Eddystone advertises its Tx power at 0 m, which is 41 dB above it) calibrates
the estimate. Two documented models:

- log-distance path loss: d = 10 ^ ((power_1m - rssi) / (10 * n)), n the path-loss exponent
  (2 in free space, 2.5-4 indoors with bodies and shelves in the way);
- the AltBeacon / Android Beacon Library curve fit (a Nexus 4 calibration): ratio = rssi /
  power_1m; d = ratio ^ 10 if ratio < 1, else 0.89976 * ratio ^ 7.7095 + 0.111.

Classes as iBeacon's CLProximity: immediate (< 0.5 m), near (< 3 m), far. RSSI fluctuates by
several dB between packets, so a distance is an order of magnitude, not a measurement: the
classes are what decisions use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

EDDYSTONE_0M_TO_1M_DB = 41  # Eddystone Tx power is calibrated at 0 m: 1 m power = it - 41
IMMEDIATE_BELOW_M = 0.5
NEAR_BELOW_M = 3.0


class DistanceModel(StrEnum):
    LOG_DISTANCE = "log_distance"
    ALTBEACON = "altbeacon"


class Proximity(StrEnum):
    IMMEDIATE = "immediate"
    NEAR = "near"
    FAR = "far"


_RANK = {Proximity.IMMEDIATE: 0, Proximity.NEAR: 1, Proximity.FAR: 2}


@dataclass(frozen=True, slots=True)
class RangingConfig:
    model: DistanceModel = DistanceModel.LOG_DISTANCE
    path_loss_exponent: float = 2.0  # n of the log-distance model
    # a sighting is presence evidence when its class is this or closer...
    max_proximity: Proximity = Proximity.NEAR
    # ...or, when set, instead when its estimated distance is at most this many metres
    max_distance_m: float | None = None

    def __post_init__(self) -> None:
        if not self.path_loss_exponent > 0:
            raise ValueError("path_loss_exponent must be > 0")
        if self.max_distance_m is not None and not self.max_distance_m >= 0:
            raise ValueError("max_distance_m must be >= 0")


def power_1m_from_eddystone(tx_power_0m: float) -> float:
    return tx_power_0m - EDDYSTONE_0M_TO_1M_DB


def distance_m(
    rssi: float,
    power_1m: float,
    model: DistanceModel = DistanceModel.LOG_DISTANCE,
    path_loss_exponent: float = 2.0,
) -> float:
    """Estimated distance in metres to a beacon heard at `rssi` (dBm, < 0 in practice)."""
    if model is DistanceModel.LOG_DISTANCE:
        return float(10.0 ** ((power_1m - rssi) / (10.0 * path_loss_exponent)))
    if power_1m == 0.0:
        raise ValueError("the AltBeacon curve needs a non-zero 1 m power")
    ratio = rssi / power_1m
    if ratio < 1.0:
        return float(ratio**10) if ratio > 0.0 else 0.0
    return 0.89976 * math.pow(ratio, 7.7095) + 0.111


def classify(distance: float) -> Proximity:
    if distance < IMMEDIATE_BELOW_M:
        return Proximity.IMMEDIATE
    if distance < NEAR_BELOW_M:
        return Proximity.NEAR
    return Proximity.FAR


@dataclass(frozen=True, slots=True)
class Ranging:
    distance_m: float
    proximity: Proximity
    near_enough: bool  # presence evidence under the config's threshold


def class_near_enough(cls: Proximity, cfg: RangingConfig) -> bool:
    """For a class reported without an RSSI (iOS ranging): judged by the class threshold."""
    return _RANK[cls] <= _RANK[cfg.max_proximity]


def range_beacon(rssi: float, power_1m: float, cfg: RangingConfig) -> Ranging:
    d = distance_m(rssi, power_1m, cfg.model, cfg.path_loss_exponent)
    cls = classify(d)
    if cfg.max_distance_m is not None:
        near = d <= cfg.max_distance_m
    else:
        near = class_near_enough(cls, cfg)
    return Ranging(d, cls, near)
