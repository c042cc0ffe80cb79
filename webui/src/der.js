// A strict DER reader, the same rules as provenance/crypto/_der.py (_Reader): minimal lengths, no
// indefinite form, no trailing data. Only what SPKI keys and SM2 signatures need.

export const TAG = { INTEGER: 0x02, BIT_STRING: 0x03, OID: 0x06, SEQUENCE: 0x30 };

export function readDer(data) {
  let pos = 0;
  const reader = {
    done: () => pos === data.length,
    peekTag: () => (pos < data.length ? data[pos] : null),
    read(tag) {
      let p = pos;
      if (p + 2 > data.length) throw new Error('truncated');
      if (data[p] !== tag) throw new Error(`expected tag 0x${tag.toString(16).padStart(2, '0')}, got 0x${data[p].toString(16).padStart(2, '0')}`);
      const first = data[p + 1];
      p += 2;
      let n;
      if (first < 0x80) n = first;
      else if (first === 0x80) throw new Error('indefinite length');
      else {
        const k = first & 0x7f;
        if (k > 4 || p + k > data.length) throw new Error('bad length');
        n = 0;
        for (let i = 0; i < k; i++) n = n * 256 + data[p + i];
        p += k;
        if (n < 0x80 || data[p - k] === 0) throw new Error('non-minimal length');
      }
      if (p + n > data.length) throw new Error('truncated');
      pos = p + n;
      return data.subarray(p, p + n);
    },
    uint() {
      const v = reader.read(TAG.INTEGER);
      if (!v.length) throw new Error('empty INTEGER');
      if (v[0] & 0x80) throw new Error('negative INTEGER');
      if (v.length > 1 && v[0] === 0 && !(v[1] & 0x80)) throw new Error('non-minimal INTEGER');
      return BigInt('0x' + Array.from(v, (b) => b.toString(16).padStart(2, '0')).join(''));
    },
    end() {
      if (pos !== data.length) throw new Error('trailing data');
    },
  };
  return reader;
}
