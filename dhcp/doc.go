// Package dhcp owns hotdesk's DHCPv4 service: a full server or an inform-only
// responder that hands phones their provisioning options (66/160/150/43) by
// vendor class, built on github.com/insomniacslk/dhcp.
package dhcp
