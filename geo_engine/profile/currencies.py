"""ISO 4217 currency codes, embedded: no runtime dependency for a 3-letter check.

Source: the ISO 4217 list as shipped by pycountry 26.2.16 (Debian iso-codes), 178 codes.
Split in two: codes one pays with, and ISO 4217 codes that are not a payment currency (funds,
precious metals, bond-market units, SDR, the testing code and "no currency"), which a purchase
may not use. tests/unit/test_rfm.py checks the union against pycountry when it is installed.
"""

from __future__ import annotations


def _codes(text: str) -> frozenset[str]:
    return frozenset(text.split())


PAYMENT_CURRENCIES: frozenset[str] = _codes(
    """
    AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD
    CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS
    GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW
    KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR
    MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR
    SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX
    USD UYU UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
    """
)

NON_PAYMENT_CODES: frozenset[str] = _codes(
    # funds (BOV CHE CHW CLF COU MXV USN UYI UYW), metals (XAG XAU XPD XPT), bond units
    # (XBA-XBD), SDR (XDR), SUCRE (XSU), ADB unit (XUA), Arab accounting dinar (XAD),
    # testing (XTS), no currency (XXX)
    """
    BOV CHE CHW CLF COU MXV USN UYI UYW XAG XAU XPD XPT XBA XBB XBC XBD XDR XSU XUA XAD XTS XXX
    """
)

ISO_4217: frozenset[str] = PAYMENT_CURRENCIES | NON_PAYMENT_CODES


def currency_problem(code: str) -> str | None:
    """Why `code` is not a currency a purchase may be in, or None when it is."""
    if code in PAYMENT_CURRENCIES:
        return None
    if code in NON_PAYMENT_CODES:
        return f"{code} is an ISO 4217 code but not a payment currency"
    if code.upper() in PAYMENT_CURRENCIES:
        return f"ISO 4217 codes are upper case: {code.upper()}"
    return f"{code!r} is not an ISO 4217 currency code"
