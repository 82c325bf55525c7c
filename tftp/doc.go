// Package tftp serves hotdesk's virtual file namespace (rendered configs,
// static firmware, phone uploads) over TFTP on pin/tftp/v3, with name
// sanitising, per-transfer limits and metrics in front of a FileSystem the
// daemon implements.
package tftp
