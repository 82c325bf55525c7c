package vm

import "hotdesk/sip/media/g711"

// G.711 lives in sip/media/g711, shared with the media bridge.

const (
	ptPCMU = g711.PCMU
	ptPCMA = g711.PCMA
)

func encode(pt uint8, pcm []int16) []byte { return g711.Encode(pt, pcm) }

func decode(pt uint8, b []byte) []int16 { return g711.Decode(pt, b) }

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
