package prov

import (
	"regexp"
	"strings"
)

// NormalizeMAC returns s as 12 lowercase hex digits, accepting ':', '-' and
// '.' separators; ok is false for anything else.
func NormalizeMAC(s string) (string, bool) {
	if isNormalMAC(s) {
		return s, true // already normal: no copy (checked on every fetch)
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
			b.WriteByte(c)
		case c >= 'A' && c <= 'F':
			b.WriteByte(c + 'a' - 'A')
		case c == ':' || c == '-' || c == '.':
		default:
			return "", false
		}
		if b.Len() > 12 {
			return "", false
		}
	}
	if b.Len() != 12 || b.String() == "000000000000" {
		return "", false
	}
	return b.String(), true
}

// isNormalMAC reports whether s is 12 lower-case hex digits, not all zero.
func isNormalMAC(s string) bool {
	if len(s) != 12 || s == "000000000000" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

var uaMACPatterns = []*regexp.Regexp{
	// Yealink: "Yealink SIP-T46G 28.72.0.1 00:15:65:4a:a9:37"
	regexp.MustCompile(`(?i)^Yealink .* ([0-9a-f]{2}(?::[0-9a-f]{2}){5})\s*$`),
	// Cisco SPA/MPP: "Cisco/SPA508G-7.4.4 (0002FDFF2103)(CBT141400UK)",
	// "Cisco-CP-8851-3PCC/11.3.7 (00562b043615)"
	regexp.MustCompile(`(?i)^Cisco[/-]\S+ \(([0-9a-f]{12})\)`),
	// Grandstream: "Grandstream Model HW GXP2170 SW 1.0.11.85 DevId 000b82865e6a"
	regexp.MustCompile(`(?i)^Grandstream .*DevId ([0-9a-f]{12})\b`),
	// Snom: "Mozilla/4.0 (compatible; snom710-SIP 8.7.5.35 1.1.5-IFX-05.01.12 000413741767)"
	regexp.MustCompile(`(?i)snom\S*-SIP .* ([0-9a-f]{12})\)\s*$`),
	// Fanvil: "Fanvil X4U 2.12.16.17 0c383e07e16c"
	regexp.MustCompile(`(?i)^Fanvil .* ([0-9a-f]{12})\s*$`),
	// Polycom with device.prov.tagSerialNo=1: "... (SN:0004f2abcdef) ..."
	regexp.MustCompile(`(?i)\bSN:([0-9a-f]{12})\b`),
}

// MACFromUserAgent extracts the MAC that Yealink, Cisco, Grandstream, Snom, Fanvil
// and (with tagSerialNo) Polycom phones put in their User-Agent.
func MACFromUserAgent(ua string) (string, bool) {
	if len(ua) > 512 {
		return "", false
	}
	for _, re := range uaMACPatterns {
		if m := re.FindStringSubmatch(ua); m != nil {
			return NormalizeMAC(m[1])
		}
	}
	return "", false
}

// polycomUARE reads Polycom's and Poly's "<Family>-<Model>-UA/<version>":
// PolycomVVX-VVX_400, PolycomRealPresenceTrio-Trio_8800, and Poly's newer
// Edge E/B, CCX and Trio families, PolyEdge-Edge_E450, PolyCCX-CCX_500,
// PolyTrio-Trio_C60 (the same FileTransport convention; those spellings are
// inferred from it, not quoted from a Poly guide).
var polycomUARE = regexp.MustCompile(`\bPoly(?:com)?(?:VVX|SoundPoint\S*|SoundStation\S*|RealPresenceTrio|Edge|CCX|Trio)?-([A-Za-z0-9_]+)-UA/([0-9.A-Za-z]+)`)

// ciscoUARE reads an MPP's model and firmware: "Cisco/CP-8851-3PCC-11.3.7 (…)"
// or "Cisco-CP-8851-3PCC/11.3.7 (…)".
var ciscoUARE = regexp.MustCompile(`^(?i:cisco)[/-](CP-[0-9]{4}[A-Z]*(?:-3PCC)?)[-/]([0-9][0-9A-Za-z.()-]*)`)

// snomUARE reads a Snom's model and firmware: "snomD785-SIP 10.1.159.12"
// (HTTP) or "snomD785/10.1.159.12" (SIP).
var snomUARE = regexp.MustCompile(`snom([A-Za-z0-9]+)(?:-SIP |/)([0-9][0-9A-Za-z.]*)`)

// gsUARE reads a Grandstream's model and firmware: "Grandstream Model HW
// GXP2170 SW 1.0.11.85 DevId 000b82865e6a" (HTTP) or "Grandstream
// GRP2614 1.0.11.85" (SIP).
var gsUARE = regexp.MustCompile(`^(?i:grandstream) (?:Model HW )?([A-Z]{2,4}[0-9]{3,4}[A-Za-z0-9]*) (?:SW )?([0-9][0-9.]*)`)

// fanvilUARE reads a Fanvil's model and firmware: "Fanvil X4U 2.12.16.17
// 0c383e07e16c", "Fanvil X6U Pro 0.0.10 0c383e2cd782".
var fanvilUARE = regexp.MustCompile(`^(?i:fanvil) ([A-Za-z][A-Za-z0-9-]*(?: Pro)?) ([0-9][0-9.]*)`)

// VendorFromUserAgent returns the vendor (lowercase) and, when the UA says
// so, the model and firmware version.
func VendorFromUserAgent(ua string) (vendor, model, firmware string) {
	l := strings.ToLower(ua)
	switch {
	case strings.Contains(l, "spectralink"):
		vendor = "spectralink"
	case strings.Contains(l, "polycom") || polycomUARE.MatchString(ua):
		vendor = "polycom"
		if m := polycomUARE.FindStringSubmatch(ua); m != nil {
			model, firmware = m[1], m[2]
		}
	case strings.HasPrefix(l, "yealink"):
		vendor = "yealink"
		if f := strings.Fields(ua); len(f) >= 3 {
			model, firmware = f[1], f[2]
		}
	case strings.HasPrefix(l, "grandstream"):
		vendor = "grandstream"
		if m := gsUARE.FindStringSubmatch(ua); m != nil {
			model, firmware = m[1], m[2]
		}
	case strings.Contains(l, "snom"):
		vendor = "snom"
		if m := snomUARE.FindStringSubmatch(ua); m != nil {
			model, firmware = m[1], m[2]
		}
	case strings.HasPrefix(l, "fanvil"):
		vendor = "fanvil"
		if m := fanvilUARE.FindStringSubmatch(ua); m != nil {
			model, firmware = strings.ReplaceAll(m[1], " ", "-"), m[2]
		}
	case strings.HasPrefix(l, "cisco"):
		vendor = "cisco"
		if m := ciscoUARE.FindStringSubmatch(ua); m != nil {
			model, firmware = m[1], m[2]
		}
	}
	return vendor, model, firmware
}

// ouiVendors are the OUIs (first 6 hex digits of the MAC) of the phones'
// makers, for devices whose User-Agent says nothing.
var ouiVendors = map[string]string{
	"0004f2": "polycom", "64167f": "polycom", "482567": "polycom",
	"00907a": "spectralink",
	"001565": "yealink", "805ec0": "yealink", "249ad8": "yealink", "44dbd2": "yealink",
	"000b82": "grandstream", "c074ad": "grandstream",
	"000413": "snom",
	"0c383e": "fanvil",
}

// VendorFromMAC returns the vendor owning mac's OUI, or "".
func VendorFromMAC(mac string) string {
	if len(mac) < 6 {
		return ""
	}
	return ouiVendors[mac[:6]]
}
