# extract.py DIR DESCRIPTION > recording.json: every run folder's probe samples under DIR, by probe
# and phase, in microseconds (-1: a failed sample), in the format of ../README.md.
import json,glob,sys
# extract.py DIR DESCRIPTION > out.json
runs=[]
for f in sorted(glob.glob(sys.argv[1]+'/*/report.json')):
    r=json.load(open(f)); run={}
    for p in r['probes']:
        ph={}
        for s in p['samples']:
            ph.setdefault(s['phase'],[]).append(round(s['durationNs']/1000) if s['ok'] else -1)
        run[p['name']]=ph
    runs.append(run)
print(json.dumps({"description":sys.argv[2],"unit":"us (-1: a failed sample)","runs":runs},separators=(',',':')))
