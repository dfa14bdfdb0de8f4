"""Drive one endpoint with random actions for one episode.

    uv run python examples/python/quickstart/eval.py 127.0.0.1:5555
"""

import argparse

from rlmesh.numpy import RemoteEnv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("address", nargs="?", default="127.0.0.1:5555")
    parser.add_argument("--max-steps", type=int, default=64)
    args = parser.parse_args()

    with RemoteEnv(args.address) as env:
        print(f"{args.address}: connected to {env.spec.id if env.spec else 'a custom env'}")
        obs, info = env.reset(seed=0)
        total = 0.0
        for step in range(1, args.max_steps + 1):
            obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
            total += float(reward)
            if terminated or truncated:
                print(f"{args.address}: episode complete after {step} steps, return {total:.3f}")
                break
        else:
            print(f"{args.address}: stopped after {args.max_steps} steps, return {total:.3f}")


if __name__ == "__main__":
    main()
