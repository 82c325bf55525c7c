package vm

// G.711 (ITU-T G.711) µ-law and A-law, the codecs every desk phone offers.

const (
	ptPCMU = 0
	ptPCMA = 8
)

func ulawEncode(s int16) byte {
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

func ulawDecode(b byte) int16 {
	b = ^b
	sign, exp, mant := b&0x80, int(b>>4)&7, int(b&0x0f)
	v := ((mant << 3) + 0x84) << exp
	v -= 0x84
	if sign != 0 {
		return int16(-v)
	}
	return int16(v)
}

func alawEncode(s int16) byte {
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

func alawDecode(b byte) int16 {
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

// encode and decode convert 20 ms frames for a payload type.
func encode(pt uint8, pcm []int16) []byte {
	out := make([]byte, len(pcm))
	for i, s := range pcm {
		if pt == ptPCMA {
			out[i] = alawEncode(s)
		} else {
			out[i] = ulawEncode(s)
		}
	}
	return out
}

func decode(pt uint8, b []byte) []int16 {
	out := make([]int16, len(b))
	for i, c := range b {
		if pt == ptPCMA {
			out[i] = alawDecode(c)
		} else {
			out[i] = ulawDecode(c)
		}
	}
	return out
}

// PCMUFrames is pcm as 20 ms PCMU payloads, the last padded with silence.
func PCMUFrames(pcm []int16) [][]byte {
	var out [][]byte
	for i := 0; i < len(pcm); i += frameSamples {
		f := make([]int16, frameSamples)
		copy(f, pcm[i:])
		out = append(out, encode(ptPCMU, f))
	}
	return out
}

// DecodePCMU is PCMU payloads as samples.
func DecodePCMU(frames [][]byte) []int16 {
	var out []int16
	for _, f := range frames {
		out = append(out, decode(ptPCMU, f)...)
	}
	return out
}
