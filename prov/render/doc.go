// Package render turns a device's prov.View into its vendor's files and
// computes the precedence merge (defaults < site < user < device <
// user_phone) that those files and the effective-config view share.
package render
