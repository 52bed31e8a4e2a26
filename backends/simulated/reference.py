"""Fixed reference tables of the simulated world: services, countries, plans, ratings, devices.

These are facts, not seeded randomness: the same for every seed, so a test can name a
country or a device type without first asking the world what exists.
"""

from __future__ import annotations

from dataclasses import dataclass

#: What each simulated service's p99 needs, with headroom: the built-in ``timeout_ms`` of a
#: backend that Frontdoor reaches through ``backends.base_url`` (orchestrator/config.py).
SERVICE_TIMEOUT_MS: dict[str, int] = {
    "plans": 400,
    "trial": 400,
    "accounts": 800,
    "billing": 800,
    "subscriber": 300,
    "recommendations": 600,
    "catalog": 500,
    "ratings": 300,
    "search": 600,
    "device": 300,
    "playback": 500,
    "bookmarks": 300,
    "licensing": 800,
    "history": 500,
}

#: Every simulated service, in the order the families list them (non-member, discovery, playback).
SERVICES: tuple[str, ...] = tuple(SERVICE_TIMEOUT_MS)

#: The default seed of the simulated world.
DEFAULT_SEED = 7

#: "Now" for seeded data (2026-01-01T00:00:00Z): seeded dates never depend on the wall clock.
REFERENCE_EPOCH_S = 1_767_225_600

#: Generated members are m1..m{GENERATED_MEMBERS}; accounts created at run time come after.
GENERATED_MEMBERS = 100_000

#: Catalogue size: titles are t1..t{CATALOGUE_SIZE}.
CATALOGUE_SIZE = 2_500


@dataclass(frozen=True, slots=True)
class Country:
    """A market: its currency and the languages members there speak."""

    code: str
    name: str
    currency: str
    languages: tuple[str, ...]
    #: Monthly prices in minor units (cents; yen and won have none) for basic, standard, premium.
    prices: tuple[int, int, int]
    #: Relative share of generated members living here.
    weight: int


COUNTRIES: dict[str, Country] = {
    country.code: country
    for country in (
        Country("US", "the U.S.", "USD", ("en-US", "es-US"), (999, 1799, 2499), 30),
        Country("GB", "the U.K.", "GBP", ("en-GB",), (599, 1299, 1899), 8),
        Country("DE", "Germany", "EUR", ("de-DE",), (799, 1399, 1999), 7),
        Country("FR", "France", "EUR", ("fr-FR",), (899, 1449, 1999), 6),
        Country("ES", "Spain", "EUR", ("es-ES",), (699, 1299, 1799), 4),
        Country("IT", "Italy", "EUR", ("it-IT",), (799, 1349, 1999), 3),
        Country("NL", "the Netherlands", "EUR", ("nl-NL", "en-NL"), (799, 1299, 1899), 2),
        Country("SE", "Sweden", "SEK", ("sv-SE",), (9900, 14900, 19900), 1),
        Country("BR", "Brazil", "BRL", ("pt-BR",), (2590, 4490, 5990), 10),
        Country("MX", "Mexico", "MXN", ("es-MX",), (14900, 24900, 32900), 6),
        Country("CA", "Canada", "CAD", ("en-CA", "fr-CA"), (999, 1899, 2399), 5),
        Country("JP", "Japan", "JPY", ("ja-JP",), (890, 1590, 2290), 5),
        Country("KR", "South Korea", "KRW", ("ko-KR",), (9500, 13500, 17000), 2),
        Country("IN", "India", "INR", ("hi-IN", "en-IN"), (19900, 49900, 64900), 8),
        Country("AU", "Australia", "AUD", ("en-AU",), (1099, 1899, 2599), 3),
    )
}


@dataclass(frozen=True, slots=True)
class PlanTier:
    """A plan's capabilities; its price depends on the country."""

    plan_id: str
    name: str
    max_streams: int
    video_quality: str
    #: Relative share of generated members on this plan.
    weight: int


PLAN_TIERS: tuple[PlanTier, ...] = (
    PlanTier("basic", "Basic", 1, "720p", 30),
    PlanTier("standard", "Standard", 2, "1080p", 45),
    PlanTier("premium", "Premium", 4, "2160p", 25),
)
PLANS_BY_ID: dict[str, PlanTier] = {tier.plan_id: tier for tier in PLAN_TIERS}

#: Resolutions from lowest to highest; a stream is the lower of what plan and device allow.
RESOLUTIONS: tuple[str, ...] = ("480p", "720p", "1080p", "2160p")

#: Maturity ratings and the level a member needs to watch them (0 = youngest, 4 = everything).
MATURITY_LEVELS: dict[str, int] = {
    "TV-Y": 0,
    "G": 1,
    "PG": 2,
    "PG-13": 3,
    "TV-14": 3,
    "R": 4,
    "TV-MA": 4,
}
MOVIE_RATINGS: tuple[str, ...] = ("G", "PG", "PG-13", "R")
SERIES_RATINGS: tuple[str, ...] = ("TV-Y", "TV-14", "TV-MA")

#: Genres; the ones in KIDS_GENRES pull ratings down, ADULT_GENRES pull them up.
GENRES: tuple[str, ...] = (
    "Action",
    "Adventure",
    "Animation",
    "Anime",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Family",
    "Fantasy",
    "Horror",
    "Kids",
    "Musical",
    "Mystery",
    "Reality",
    "Romance",
    "Sci-Fi",
    "Stand-Up",
    "Thriller",
    "Western",
)
KIDS_GENRES: frozenset[str] = frozenset({"Animation", "Family", "Kids"})
ADULT_GENRES: frozenset[str] = frozenset({"Horror", "Crime", "Thriller", "Stand-Up"})

DRM_SYSTEMS: frozenset[str] = frozenset({"widevine", "playready", "fairplay"})


@dataclass(frozen=True, slots=True)
class DeviceProfile:
    """What a device type can play."""

    max_resolution: str
    codecs: tuple[str, ...]
    drm: str
    hdr: bool
    audio: tuple[str, ...]


def _device(max_resolution: str, codecs: str, drm: str, audio: str, *, hdr: bool) -> DeviceProfile:
    """A profile from space-separated codec and audio lists (keeps the table readable)."""
    return DeviceProfile(max_resolution, tuple(codecs.split()), drm, hdr, tuple(audio.split()))


_SURROUND = "atmos eac3-5.1 aac-stereo"
DEVICES: dict[str, DeviceProfile] = {
    "tv-samsung-2024": _device("2160p", "av1 hevc h264", "playready", _SURROUND, hdr=True),
    "tv-lg-2023": _device("2160p", "hevc vp9 h264", "playready", _SURROUND, hdr=True),
    "tv-sony-2022": _device("2160p", "hevc vp9 h264", "widevine", "eac3-5.1 aac-stereo", hdr=True),
    "roku-ultra": _device("2160p", "hevc vp9 h264", "playready", "eac3-5.1 aac-stereo", hdr=True),
    "apple-tv-4k": _device("2160p", "hevc h264", "fairplay", _SURROUND, hdr=True),
    "fire-tv-stick": _device("1080p", "hevc h264", "playready", "eac3-5.1 aac-stereo", hdr=False),
    "chromecast-google-tv": _device(
        "2160p", "av1 vp9 h264", "widevine", "eac3-5.1 aac-stereo", hdr=True
    ),
    "ps5": _device("2160p", "hevc h264", "playready", "eac3-5.1 aac-stereo", hdr=True),
    "xbox-series-x": _device("2160p", "av1 hevc h264", "playready", _SURROUND, hdr=True),
    "ios-phone": _device("1080p", "hevc h264", "fairplay", "aac-stereo", hdr=True),
    "ios-tablet": _device("1080p", "hevc h264", "fairplay", "aac-stereo", hdr=True),
    "android-phone": _device("1080p", "av1 vp9 h264", "widevine", "aac-stereo", hdr=False),
    "android-tablet": _device("1080p", "vp9 h264", "widevine", "aac-stereo", hdr=False),
    "web-chrome": _device("1080p", "av1 vp9 h264", "widevine", "aac-stereo", hdr=False),
    "web-firefox": _device("720p", "vp9 h264", "widevine", "aac-stereo", hdr=False),
    "web-safari": _device("1080p", "hevc h264", "fairplay", "aac-stereo", hdr=True),
    "web-edge": _device("2160p", "hevc h264", "playready", "aac-stereo", hdr=True),
}

#: Unknown device types get this: what every device on the market can play.
GENERIC_DEVICE = _device("720p", "h264", "widevine", "aac-stereo", hdr=False)

#: Codec preference when choosing a stream, most efficient first.
CODEC_PREFERENCE: tuple[str, ...] = ("av1", "hevc", "vp9", "h264")

#: Typical H.264 bitrates per resolution; better codecs need a fraction of it.
H264_BITRATE_KBPS: dict[str, int] = {"480p": 1_500, "720p": 3_000, "1080p": 5_800, "2160p": 16_000}
CODEC_EFFICIENCY: dict[str, float] = {"h264": 1.0, "vp9": 0.7, "hevc": 0.65, "av1": 0.55}
