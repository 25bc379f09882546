//! Check-digit and structure validators for structured identifiers.
//!
//! Each function takes the candidate as written (separators allowed where
//! the format allows them) and says whether it is a well-formed identifier.
//! A candidate that fails its checksum is not PII.

/// Digits of `s`, ignoring spaces and hyphens; `None` when anything else appears.
fn digits(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'0'..=b'9' => out.push(b - b'0'),
            b' ' | b'-' | b'.' | b'/' => {}
            _ => return None,
        }
    }
    Some(out)
}

/// Luhn (mod 10) check over a digit sequence.
pub fn luhn(d: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, &x) in d.iter().rev().enumerate() {
        let mut v = u32::from(x);
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    !d.is_empty() && sum.is_multiple_of(10)
}

/// Payment card number: 13–19 digits, Luhn-valid, with a known issuer prefix.
pub fn credit_card(s: &str) -> bool {
    let Some(d) = digits(s) else { return false };
    if !(13..=19).contains(&d.len()) || !luhn(&d) {
        return false;
    }
    let p2 = u32::from(d[0]) * 10 + u32::from(d[1]);
    let p4 = p2 * 100 + u32::from(d[2]) * 10 + u32::from(d[3]);
    match d[0] {
        4 => matches!(d.len(), 13 | 16 | 19),              // Visa
        5 => (51..=55).contains(&p2) && d.len() == 16,     // Mastercard
        2 => (2221..=2720).contains(&p4) && d.len() == 16, // Mastercard 2-series
        3 => {
            (p2 == 34 || p2 == 37) && d.len() == 15              // Amex
            || (3528..=3589).contains(&p4) && d.len() >= 16       // JCB
            || (p2 == 36 || p2 == 38 || (300..=305).contains(&(p4 / 10))) && d.len() >= 14
        } // Diners
        6 => p4 == 6011 || p2 == 65 || (644..=649).contains(&(p4 / 10)) || p2 == 62, // Discover, UnionPay
        _ => false,
    }
}

/// IBAN length per country (ISO 13616 registry, common countries).
fn iban_length(country: &str) -> Option<usize> {
    Some(match country {
        "DE" => 22,
        "AT" => 20,
        "CH" | "LI" => 21,
        "FR" | "MC" | "IT" | "SM" => 27,
        "ES" | "SE" | "SK" | "CZ" | "TN" | "RO" => 24,
        "NL" => 18,
        "BE" => 16,
        "LU" | "EE" | "LT" | "BA" => 20,
        "GB" | "IE" | "BG" | "BH" | "GE" => 22,
        "PL" | "HU" | "CY" => 28,
        "PT" => 25,
        "DK" | "FI" | "FO" | "GL" => 18,
        "NO" => 15,
        "GR" => 27,
        "HR" | "LV" => 21,
        "SI" => 19,
        "MT" => 31,
        "IS" | "TR" => 26,
        "AE" | "IL" => 23,
        "SA" => 24,
        _ => return None,
    })
}

/// The IBAN at the start of `s` (spaces allowed between groups): returns the byte
/// length of the valid IBAN, trimmed to its country's length, or `None`.
pub fn iban_prefix(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    if b.len() < 4 {
        return None;
    }
    let country = s.get(0..2)?;
    let want = iban_length(country)?;
    let mut chars = Vec::with_capacity(want);
    let mut end = 0;
    for (i, &c) in b.iter().enumerate() {
        if chars.len() == want {
            break;
        }
        if c == b' ' {
            continue;
        }
        if !c.is_ascii_alphanumeric() {
            return None;
        }
        chars.push(c);
        end = i + 1;
    }
    if chars.len() != want || !chars[2].is_ascii_digit() || !chars[3].is_ascii_digit() {
        return None;
    }
    // Rearranged: BBAN then country and check digits, letters as 10..35, mod 97 == 1.
    let mut rem = 0u32;
    for &c in chars[4..].iter().chain(chars[..4].iter()) {
        let v = if c.is_ascii_digit() {
            u32::from(c - b'0')
        } else {
            u32::from(c.to_ascii_uppercase() - b'A') + 10
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    // The identifier must end at a word boundary: no further alphanumerics glued on.
    if b.get(end).is_some_and(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    (rem == 1).then_some(end)
}

/// Whether `s` starts with a known IBAN country code and has that country's length.
pub fn iban_shaped(s: &str) -> bool {
    let n = s.bytes().filter(u8::is_ascii_alphanumeric).count();
    s.get(0..2)
        .and_then(iban_length)
        .is_some_and(|want| n >= want)
}

/// ISO 7064 MOD 11,10 check digit over `d[..n-1]` compared with `d[n-1]`.
fn mod11_10(d: &[u8]) -> bool {
    let Some((&check, body)) = d.split_last() else {
        return false;
    };
    let mut product = 10u32;
    for &x in body {
        let mut sum = (u32::from(x) + product) % 10;
        if sum == 0 {
            sum = 10;
        }
        product = (2 * sum) % 11;
    }
    let mut c = 11 - product;
    if c == 10 {
        c = 0;
    }
    c == u32::from(check)
}

/// German tax identification number (Steuerliche Identifikationsnummer):
/// 11 digits, no leading zero, in the first ten digits exactly one digit occurs
/// two or three times and the rest at most once, MOD 11,10 check digit.
pub fn de_tax_id(s: &str) -> bool {
    let Some(d) = digits(s) else { return false };
    if d.len() != 11 || d[0] == 0 {
        return false;
    }
    let mut counts = [0u8; 10];
    for &x in &d[..10] {
        counts[usize::from(x)] += 1;
    }
    let repeated = counts.iter().filter(|&&c| c >= 2).count();
    let max = counts.iter().copied().max().unwrap_or(0);
    if repeated != 1 || max > 3 {
        return false;
    }
    // Three equal digits may not stand side by side.
    if max == 3 && d[..10].windows(3).any(|w| w[0] == w[1] && w[1] == w[2]) {
        return false;
    }
    mod11_10(&d)
}

/// Position of an ASCII letter in the alphabet, 1-based.
fn letter_number(c: u8) -> Option<u32> {
    c.is_ascii_alphabetic()
        .then(|| u32::from(c.to_ascii_uppercase() - b'A') + 1)
}

fn cross_sum(mut v: u32) -> u32 {
    let mut s = 0;
    while v > 0 {
        s += v % 10;
        v /= 10;
    }
    s
}

/// German pension insurance number (Rentenversicherungsnummer / Sozialversicherungsnummer):
/// area (2 digits), birth date DDMMYY, initial letter, serial (2 digits), check digit.
pub fn de_social_security(s: &str) -> bool {
    let c: Vec<u8> = s.bytes().filter(|b| *b != b' ').collect();
    if c.len() != 12 || !c[8].is_ascii_alphabetic() {
        return false;
    }
    if !c[..8].iter().chain(&c[9..]).all(u8::is_ascii_digit) {
        return false;
    }
    let n = |i: usize| u32::from(c[i] - b'0');
    let day = n(2) * 10 + n(3);
    let month = n(4) * 10 + n(5);
    // Day may carry +50 for a second number at the same date.
    let day = if day > 50 { day - 50 } else { day };
    if !(1..=31).contains(&day) || !(1..=12).contains(&month) {
        return false;
    }
    let Some(letter) = letter_number(c[8]) else {
        return false;
    };
    let seq = [
        n(0),
        n(1),
        n(2),
        n(3),
        n(4),
        n(5),
        n(6),
        n(7),
        letter / 10,
        letter % 10,
        n(9),
        n(10),
    ];
    const W: [u32; 12] = [2, 1, 2, 5, 7, 1, 2, 1, 2, 1, 2, 1];
    let sum: u32 = seq.iter().zip(W).map(|(v, w)| cross_sum(v * w)).sum();
    sum % 10 == n(11)
}

/// German health insurance number (Krankenversichertennummer, the fixed part):
/// a letter and nine digits, the last a check digit over letter number and digits.
pub fn de_health_insurance(s: &str) -> bool {
    let c = s.as_bytes();
    if c.len() != 10 || !c[1..].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let Some(letter) = letter_number(c[0]) else {
        return false;
    };
    let mut seq = vec![letter / 10, letter % 10];
    seq.extend(c[1..9].iter().map(|b| u32::from(b - b'0')));
    let sum: u32 = seq
        .iter()
        .enumerate()
        .map(|(i, v)| cross_sum(v * if i % 2 == 0 { 1 } else { 2 }))
        .sum();
    sum % 10 == u32::from(c[9] - b'0')
}

/// EU VAT identification number; checksums for DE, AT, BE, FR, IT, NL, PL,
/// format only for the others the pattern admits.
pub fn vat_id(s: &str) -> bool {
    let c: String = s.chars().filter(|c| *c != ' ').collect();
    let (cc, rest) = c.split_at(2.min(c.len()));
    let d = |x: &str| digits(x).unwrap_or_default();
    match cc {
        "DE" => rest.len() == 9 && rest.as_bytes()[0] != b'0' && mod11_10(&d(rest)),
        "AT" => {
            let Some(r) = rest.strip_prefix('U') else {
                return false;
            };
            let v = d(r);
            if v.len() != 8 {
                return false;
            }
            let mut sum = 0u32;
            for (i, &x) in v[..7].iter().enumerate() {
                let x = u32::from(x);
                sum += if i % 2 == 1 { cross_sum(2 * x) } else { x };
            }
            (10 - (sum + 4) % 10) % 10 == u32::from(v[7])
        }
        "BE" => {
            let v = d(rest);
            if v.len() != 10 {
                return false;
            }
            let body = v[..8].iter().fold(0u64, |a, &x| a * 10 + u64::from(x));
            let check = u64::from(v[8]) * 10 + u64::from(v[9]);
            97 - body % 97 == check
        }
        "FR" => {
            let v = d(rest.get(2..).unwrap_or(""));
            let key = rest.get(..2).and_then(|k| k.parse::<u64>().ok());
            if v.len() != 9 {
                return false;
            }
            let siren = v.iter().fold(0u64, |a, &x| a * 10 + u64::from(x));
            key.is_some_and(|k| (12 + 3 * (siren % 97)) % 97 == k)
        }
        "IT" => {
            let v = d(rest);
            v.len() == 11 && luhn(&v)
        }
        "NL" => {
            let b = rest.as_bytes();
            if b.len() != 12 || b[9] != b'B' {
                return false;
            }
            let v = d(&rest[..9]);
            if v.len() != 9 {
                return false;
            }
            let sum: u32 = v[..8]
                .iter()
                .enumerate()
                .map(|(i, &x)| u32::from(x) * (9 - i as u32))
                .sum();
            let old = sum % 11 == u32::from(v[8]);
            // Since 2020 sole traders' numbers follow the ISO 7064 MOD 97-10 rule.
            let mut rem = 0u64;
            for ch in format!("NL{rest}").bytes() {
                rem = if ch.is_ascii_digit() {
                    (rem * 10 + u64::from(ch - b'0')) % 97
                } else {
                    (rem * 100 + u64::from(ch - b'A') + 10) % 97
                };
            }
            old || rem == 1
        }
        "PL" => {
            let v = d(rest);
            if v.len() != 10 {
                return false;
            }
            const W: [u32; 9] = [6, 5, 7, 2, 3, 4, 5, 6, 7];
            let sum: u32 = v[..9].iter().zip(W).map(|(&x, w)| u32::from(x) * w).sum();
            sum % 11 == u32::from(v[9])
        }
        "ES" => rest.len() == 9,
        "GB" => matches!(rest.len(), 9 | 12),
        _ => false,
    }
}

/// Dotted IPv4 address with every octet ≤ 255 and no leading zeros.
pub fn ipv4(s: &str) -> bool {
    s.parse::<std::net::Ipv4Addr>().is_ok()
}

/// IPv6 address in any valid textual form.
pub fn ipv6(s: &str) -> bool {
    s.matches(':').count() >= 2 && s.parse::<std::net::Ipv6Addr>().is_ok()
}

/// Calendar date with day and month in range (year given as four digits).
pub fn plausible_date(day: u32, month: u32, year: u32) -> bool {
    let dim = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        _ => return false,
    };
    (1..=dim).contains(&day) && (1900..=2100).contains(&year)
}

/// A US Social Security or taxpayer number as `ddd-dd-dddd` (or with spaces): area not
/// 000 or 666, group not 00, serial not 0000, and not the two numbers printed in every
/// example (123-45-6789, 078-05-1120). Area 9xx stays: those are ITINs, personal too.
pub fn us_ssn(s: &str) -> bool {
    let d: Vec<u8> = s
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| b - b'0')
        .collect();
    if d.len() != 9 {
        return false;
    }
    let num = |r: std::ops::Range<usize>| d[r].iter().fold(0u32, |a, &x| a * 10 + u32::from(x));
    let (area, group, serial) = (num(0..3), num(3..5), num(5..9));
    let all = num(0..9);
    area != 0 && area != 666 && group != 0 && serial != 0 && all != 123_456_789 && all != 78_051_120
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_and_cards() {
        assert!(credit_card("4111 1111 1111 1111"));
        assert!(credit_card("5500-0000-0000-0004"));
        assert!(credit_card("378282246310005"));
        assert!(credit_card("6011111111111117"));
        assert!(!credit_card("4111 1111 1111 1112"));
        assert!(!credit_card("1234 5678 9012 3456"));
    }

    #[test]
    fn ibans() {
        let s = "DE89 3704 0044 0532 0130 00 is mine";
        assert_eq!(iban_prefix(s), Some("DE89 3704 0044 0532 0130 00".len()));
        assert_eq!(iban_prefix("GB82WEST12345698765432"), Some(22));
        assert_eq!(iban_prefix("DE89 3704 0044 0532 0130 01"), None);
        assert_eq!(iban_prefix("XX89 3704 0044 0532 0130 00"), None);
    }

    #[test]
    fn german_ids() {
        // Published examples: tax id from the BZSt test range, pension number from
        // the Deutsche Rentenversicherung's description, KVNR built by hand.
        assert!(de_tax_id("86095742719"));
        assert!(!de_tax_id("86095742710"));
        assert!(!de_tax_id("11111111111"));
        assert!(de_social_security("15070649C103"));
        assert!(de_social_security("15 070649 C 103"));
        assert!(!de_social_security("15070649C104"));
        assert!(de_health_insurance("A123456780"));
        assert!(!de_health_insurance("A123456781"));
    }

    #[test]
    fn vat_ids() {
        assert!(vat_id("DE136695976"));
        assert!(!vat_id("DE136695977"));
        assert!(vat_id("ATU13585627"));
        assert!(vat_id("BE0403170701"));
        assert!(vat_id("FR40303265045"));
        assert!(vat_id("IT00743110157"));
        assert!(vat_id("PL5260001246"));
        assert!(!vat_id("PL5260001247"));
    }

    #[test]
    fn ips_and_dates() {
        assert!(ipv4("192.168.0.1"));
        assert!(!ipv4("256.1.1.1"));
        assert!(ipv6("2001:db8::1"));
        assert!(!ipv6("10:30:45"));
        assert!(plausible_date(29, 2, 2000));
        assert!(!plausible_date(29, 2, 1900));
    }
}
