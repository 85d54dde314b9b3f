// Test glue: checks clearance's transparency-log artifacts with Go's reference
// implementations, golang.org/x/mod/sumdb/note and golang.org/x/mod/sumdb/tlog.
//
// It reads one JSON request on stdin and writes one JSON verdict on stdout.
// Paths are C2SP tlog-tiles paths; x/mod writes the tile height into its paths
// ("tile/8/0/..." and "tile/8/data/..."), so the glue adds it before asking
// tlog.ParseTilePath and drops it when reading files. Entry bundles are split
// on their uint16 length prefixes here and hashed with tlog.RecordHash.
//
// cosignature/v1 (C2SP tlog-cosignature) is not in x/mod: cosignatures are
// opened with note.Open and a note.Verifier defined below (key ID and signed
// message as the spec gives them, crypto/ed25519 from Go's standard library).
package main

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type cosigner struct {
	Name string `json:"name"`
	Key  string `json:"key"`
}

type noteRequest struct {
	Note      string     `json:"note"`
	VKeys     []string   `json:"vkeys"`
	Cosigners []cosigner `json:"cosigners"`
}

type noteVerdict struct {
	OK       bool     `json:"ok"`
	Error    string   `json:"error"`
	Text     string   `json:"text"`
	Verified []string `json:"verified"`
}

type inclusionRequest struct {
	Index    int64    `json:"index"`
	LeafHash string   `json:"leaf_hash"`
	Proof    []string `json:"proof"`
}

type consistencyRequest struct {
	OldSize int64    `json:"old_size"`
	OldRoot string   `json:"old_root"`
	Proof   []string `json:"proof"`
}

type request struct {
	Notes            []noteRequest        `json:"notes"`
	Dir              string               `json:"dir"`
	Size             int64                `json:"size"`
	Root             string               `json:"root"`
	Inclusion        []inclusionRequest   `json:"inclusion"`
	Consistency      []consistencyRequest `json:"consistency"`
	ProveInclusion   []int64              `json:"prove_inclusion"`
	ProveConsistency []int64              `json:"prove_consistency"`
	CheckFiles       bool                 `json:"check_files"`
}

type verdict struct {
	OK    bool   `json:"ok"`
	Error string `json:"error"`
}

type response struct {
	Notes             []noteVerdict `json:"notes"`
	Tree              verdict       `json:"tree"`
	Files             verdict       `json:"files"`
	FilesChecked      int           `json:"files_checked"`
	Inclusion         []verdict     `json:"inclusion"`
	Consistency       []verdict     `json:"consistency"`
	InclusionProofs   [][]string    `json:"inclusion_proofs"`
	ConsistencyProofs [][]string    `json:"consistency_proofs"`
}

// cosignatureVerifier is a note.Verifier for cosignature/v1 signatures.
type cosignatureVerifier struct {
	name string
	key  ed25519.PublicKey
	hash uint32
}

func newCosignatureVerifier(c cosigner) (*cosignatureVerifier, error) {
	key, err := base64.StdEncoding.DecodeString(c.Key)
	if err != nil || len(key) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("bad cosigner key")
	}
	h := sha256.New()
	h.Write([]byte(c.Name + "\n"))
	h.Write([]byte{0x04})
	h.Write(key)
	return &cosignatureVerifier{c.Name, key, binary.BigEndian.Uint32(h.Sum(nil))}, nil
}

func (v *cosignatureVerifier) Name() string    { return v.name }
func (v *cosignatureVerifier) KeyHash() uint32 { return v.hash }
func (v *cosignatureVerifier) Verify(msg, sig []byte) bool {
	if len(sig) != 8+ed25519.SignatureSize {
		return false
	}
	t := binary.BigEndian.Uint64(sig[:8])
	if t > 1<<63-1 {
		return false
	}
	signed := fmt.Sprintf("cosignature/v1\ntime %d\n%s", t, msg)
	return ed25519.Verify(v.key, []byte(signed), sig[8:])
}

func openNote(r noteRequest) noteVerdict {
	var verifiers []note.Verifier
	for _, vkey := range r.VKeys {
		v, err := note.NewVerifier(vkey)
		if err != nil {
			return noteVerdict{Error: "verifier key: " + err.Error()}
		}
		verifiers = append(verifiers, v)
	}
	for _, c := range r.Cosigners {
		v, err := newCosignatureVerifier(c)
		if err != nil {
			return noteVerdict{Error: err.Error()}
		}
		verifiers = append(verifiers, v)
	}
	n, err := note.Open([]byte(r.Note), note.VerifierList(verifiers...))
	if err != nil {
		return noteVerdict{Error: err.Error()}
	}
	var names []string
	for _, s := range n.Sigs {
		names = append(names, fmt.Sprintf("%s+%08x", s.Name, s.Hash))
	}
	return noteVerdict{OK: true, Text: n.Text, Verified: names}
}

// tileDir reads C2SP tiles from a directory for tlog.TileHashReader.
type tileDir struct{ dir string }

func c2spPath(goPath string) string {
	return "tile/" + strings.TrimPrefix(goPath, "tile/8/")
}

func (d tileDir) Height() int { return 8 }
func (d tileDir) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	data := make([][]byte, len(tiles))
	for i, t := range tiles {
		b, err := os.ReadFile(filepath.Join(d.dir, filepath.FromSlash(c2spPath(t.Path()))))
		if err != nil {
			return nil, err
		}
		data[i] = b
	}
	return data, nil
}
func (d tileDir) SaveTiles(tiles []tlog.Tile, data [][]byte) {}

func hashOf(s string) (tlog.Hash, error) {
	var h tlog.Hash
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != tlog.HashSize {
		return h, fmt.Errorf("bad hash %q", s)
	}
	copy(h[:], b)
	return h, nil
}

func hashesOf(list []string) ([]tlog.Hash, error) {
	var out []tlog.Hash
	for _, s := range list {
		h, err := hashOf(s)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, nil
}

func encode(hashes []tlog.Hash) []string {
	out := []string{}
	for _, h := range hashes {
		out = append(out, base64.StdEncoding.EncodeToString(h[:]))
	}
	return out
}

func fail(err error) verdict { return verdict{Error: err.Error()} }

// checkFiles parses every file path under dir with tlog.ParseTilePath and checks
// every entry bundle's entries against the level-0 hashes of the tree.
func checkFiles(dir string, size int64, hr tlog.HashReader) (int, error) {
	count := 0
	err := filepath.Walk(filepath.Join(dir, "tile"), func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		rel = filepath.ToSlash(rel)
		goPath := "tile/8/" + strings.TrimPrefix(rel, "tile/")
		goPath = strings.Replace(goPath, "tile/8/entries/", "tile/8/data/", 1)
		t, err := tlog.ParseTilePath(goPath)
		if err != nil {
			return err
		}
		count++
		if t.L != -1 {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		start := t.N << 8
		for i := 0; i < t.W; i++ {
			if len(data) < 2 {
				return fmt.Errorf("%s: truncated", rel)
			}
			n := int(binary.BigEndian.Uint16(data))
			if len(data) < 2+n {
				return fmt.Errorf("%s: truncated entry", rel)
			}
			entry := data[2 : 2+n]
			data = data[2+n:]
			if start+int64(i) >= size {
				return fmt.Errorf("%s: entry beyond the tree", rel)
			}
			want, err := hr.ReadHashes([]int64{tlog.StoredHashIndex(0, start+int64(i))})
			if err != nil {
				return err
			}
			if tlog.RecordHash(entry) != want[0] {
				return fmt.Errorf("%s: entry %d does not match its leaf hash", rel, start+int64(i))
			}
		}
		if len(data) != 0 {
			return fmt.Errorf("%s: trailing bytes", rel)
		}
		return nil
	})
	return count, err
}

func main() {
	var req request
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	resp := response{Notes: []noteVerdict{}, Inclusion: []verdict{}, Consistency: []verdict{},
		InclusionProofs: [][]string{}, ConsistencyProofs: [][]string{}}
	for _, n := range req.Notes {
		resp.Notes = append(resp.Notes, openNote(n))
	}
	if req.Dir != "" {
		root, err := hashOf(req.Root)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		tree := tlog.Tree{N: req.Size, Hash: root}
		hr := tlog.TileHashReader(tree, tileDir{req.Dir})
		if th, err := tlog.TreeHash(req.Size, hr); err != nil {
			resp.Tree = fail(err)
		} else if th != root {
			resp.Tree = verdict{Error: "tree hash differs"}
		} else {
			resp.Tree = verdict{OK: true}
		}
		if req.CheckFiles {
			n, err := checkFiles(req.Dir, req.Size, hr)
			resp.FilesChecked = n
			if err != nil {
				resp.Files = fail(err)
			} else {
				resp.Files = verdict{OK: true}
			}
		}
		for _, inc := range req.Inclusion {
			leaf, err1 := hashOf(inc.LeafHash)
			proof, err2 := hashesOf(inc.Proof)
			if err1 != nil || err2 != nil {
				resp.Inclusion = append(resp.Inclusion, verdict{Error: "bad input"})
				continue
			}
			if err := tlog.CheckRecord(tlog.RecordProof(proof), req.Size, root, inc.Index, leaf); err != nil {
				resp.Inclusion = append(resp.Inclusion, fail(err))
			} else {
				resp.Inclusion = append(resp.Inclusion, verdict{OK: true})
			}
		}
		for _, c := range req.Consistency {
			old, err1 := hashOf(c.OldRoot)
			proof, err2 := hashesOf(c.Proof)
			if err1 != nil || err2 != nil {
				resp.Consistency = append(resp.Consistency, verdict{Error: "bad input"})
				continue
			}
			if err := tlog.CheckTree(tlog.TreeProof(proof), req.Size, root, c.OldSize, old); err != nil {
				resp.Consistency = append(resp.Consistency, fail(err))
			} else {
				resp.Consistency = append(resp.Consistency, verdict{OK: true})
			}
		}
		for _, i := range req.ProveInclusion {
			p, err := tlog.ProveRecord(req.Size, i, hr)
			if err != nil {
				resp.InclusionProofs = append(resp.InclusionProofs, []string{"error: " + err.Error()})
				continue
			}
			resp.InclusionProofs = append(resp.InclusionProofs, encode(p))
		}
		for _, m := range req.ProveConsistency {
			p, err := tlog.ProveTree(req.Size, m, hr)
			if err != nil {
				resp.ConsistencyProofs = append(resp.ConsistencyProofs, []string{"error: " + err.Error()})
				continue
			}
			resp.ConsistencyProofs = append(resp.ConsistencyProofs, encode(p))
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(resp); err != nil {
		os.Exit(2)
	}
}
