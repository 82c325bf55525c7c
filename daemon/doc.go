// Package daemon is hotdeskd's wiring room: it reads and checks the
// configuration, opens the store, builds prov's services and the protocol
// rooms (sip, tftp, dhcp, prov/provhttp, prov/portal), joins them through
// small adapters (adapters_*.go implement the interfaces those rooms
// declare), and runs them as components with one lifecycle, metrics and
// health. Business rules do not belong here: they live in prov.
package daemon
