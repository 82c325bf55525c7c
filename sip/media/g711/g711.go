// Package g711 is ITU-T G.711 µ-law (PCMU) and A-law (PCMA), the codecs
// every desk phone offers: the voicemail server plays and records with it,
// and the media bridge transcodes between a browser's µ-law and a phone's
// A-law.
package g711

// RTP payload types (RFC 3551 §6).
const (
	PCMU = 0
	PCMA = 8
)

// UlawEncode is one linear sample in µ-law.
func UlawEncode(s int16) byte {
	const bias, clip = 0x84, 32635
	v := int(s)
	sign := 0
	if v < 0 {
		v, sign = -v, 0x80
	}
	if v > clip {
		v = clip
	}
	v += bias
	exp := 7
	for mask := 0x4000; v&mask == 0 && exp > 0; mask >>= 1 {
		exp--
	}
	mant := (v >> (exp + 3)) & 0x0f
	return ^byte(sign | exp<<4 | mant)
}

// UlawDecode is one µ-law byte as a linear sample.
func UlawDecode(b byte) int16 {
	b = ^b
	sign, exp, mant := b&0x80, int(b>>4)&7, int(b&0x0f)
	v := ((mant << 3) + 0x84) << exp
	v -= 0x84
	if sign != 0 {
		return int16(-v)
	}
	return int16(v)
}

// AlawEncode is one linear sample in A-law.
func AlawEncode(s int16) byte {
	v := int(s) >> 3 // 13-bit magnitude
	sign := 0x80
	if v < 0 {
		v, sign = -v-1, 0
	}
	if v > 0xfff {
		v = 0xfff
	}
	var out int
	if v < 32 {
		out = v >> 1
	} else {
		exp := 1
		for t := v >> 5; t > 1; t >>= 1 {
			exp++
		}
		out = exp<<4 | (v>>exp)&0x0f
	}
	return byte(out|sign) ^ 0x55
}

// AlawDecode is one A-law byte as a linear sample.
func AlawDecode(b byte) int16 {
	b ^= 0x55
	exp, mant := int(b>>4)&7, int(b&0x0f)
	var v int
	if exp == 0 {
		v = mant<<4 + 8
	} else {
		v = (mant<<4 + 0x108) << (exp - 1)
	}
	if b&0x80 == 0 {
		return int16(-v)
	}
	return int16(v)
}

// Encode is pcm in payload type pt (A-law for PCMA, else µ-law).
func Encode(pt uint8, pcm []int16) []byte {
	out := make([]byte, len(pcm))
	for i, s := range pcm {
		if pt == PCMA {
			out[i] = AlawEncode(s)
		} else {
			out[i] = UlawEncode(s)
		}
	}
	return out
}

// Decode is a payload of type pt as linear samples.
func Decode(pt uint8, b []byte) []int16 {
	out := make([]int16, len(b))
	for i, c := range b {
		if pt == PCMA {
			out[i] = AlawDecode(c)
		} else {
			out[i] = UlawDecode(c)
		}
	}
	return out
}

// UlawToAlaw transcodes src into dst (as long as src), sample by sample
// through linear PCM.
func UlawToAlaw(dst, src []byte) {
	for i, c := range src {
		dst[i] = AlawEncode(UlawDecode(c))
	}
}

// AlawToUlaw transcodes src into dst (as long as src).
func AlawToUlaw(dst, src []byte) {
	for i, c := range src {
		dst[i] = UlawEncode(AlawDecode(c))
	}
}
