package prov

import "testing"

func TestMACFromUserAgent(t *testing.T) {
	cases := map[string]string{
		"Yealink SIP-T46G 28.72.0.1 00:15:65:4a:a9:37":                                   "0015654aa937",
		"Cisco/SPA508G-7.4.4 (0002FDFF2103)(CBT141400UK)":                                "0002fdff2103",
		"Grandstream Model HW GXP2170 SW 1.0.11.85 DevId 000b82865e6a":                   "000b82865e6a",
		"Mozilla/4.0 (compatible; snom710-SIP 8.7.5.35 1.1.5-IFX-05.01.12 000413741767)": "000413741767",
		"FileTransport PolycomVVX-VVX_400-UA/5.9.0.1 (SN:0004f2abcdef) Type/Application": "0004f2abcdef",
		"FileTransport PolycomVVX-VVX_400-UA/4.1.4.7430 Type/Application":                "",
		"Fanvil X6U Pro 0.0.10 0c383e2cd782":                                             "0c383e2cd782",
	}
	for ua, want := range cases {
		if got, _ := MACFromUserAgent(ua); got != want {
			t.Errorf("%q = %q, want %q", ua, got, want)
		}
	}
	for _, tc := range []struct{ ua, vendor, model, fw string }{
		{"FileTransport PolycomVVX-VVX_400-UA/4.1.4.7430 Type/Application", "polycom", "VVX_400", "4.1.4.7430"},
		{"FileTransport PolycomRealPresenceTrio-Trio_8800-UA/5.9.1.0001 Type/Application", "polycom", "Trio_8800", "5.9.1.0001"},
		// Poly's newer families, by the same FileTransport convention.
		{"FileTransport PolyEdge-Edge_E450-UA/8.0.3.0123 Type/Application", "polycom", "Edge_E450", "8.0.3.0123"},
		{"FileTransport PolyCCX-CCX_500-UA/7.0.2.1000 Type/Application", "polycom", "CCX_500", "7.0.2.1000"},
		{"FileTransport PolyTrio-Trio_C60-UA/7.2.0.1000 Type/Application", "polycom", "Trio_C60", "7.2.0.1000"},
		{"PolyEdge-Edge_B30-UA/8.0.3.0123", "polycom", "Edge_B30", "8.0.3.0123"},
		{"Mozilla/4.0 (compatible; snomD785-SIP 10.1.159.12 2010.12-00004 000413000001)", "snom", "D785", "10.1.159.12"},
		{"snomD785/10.1.159.12", "snom", "D785", "10.1.159.12"},
		{"Grandstream Model HW GXP2170 SW 1.0.11.85 DevId 000b82865e6a", "grandstream", "GXP2170", "1.0.11.85"},
		{"Grandstream GRP2614 1.0.11.85", "grandstream", "GRP2614", "1.0.11.85"},
		{"Fanvil X4U 2.12.16.17 0c383e07e16c", "fanvil", "X4U", "2.12.16.17"},
		{"Fanvil X6U Pro 0.0.10 0c383e2cd782", "fanvil", "X6U-Pro", "0.0.10"},
		{"Polyphonic Spree 1.0", "", "", ""},
	} {
		if v, m, fw := VendorFromUserAgent(tc.ua); v != tc.vendor || m != tc.model || fw != tc.fw {
			t.Errorf("%q = %s %s %s, want %s %s %s", tc.ua, v, m, fw, tc.vendor, tc.model, tc.fw)
		}
	}
}

// FuzzParseUpload feeds arbitrary bytes to the upload parsers: they must
// never panic, and whatever ParseConfigParams accepts only uses allowed names.
