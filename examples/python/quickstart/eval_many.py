"""One evaluator, many endpoints: a RemoteEnv per address, each on its own thread.

    uv run python examples/python/quickstart/eval_many.py 127.0.0.1:5555 127.0.0.1:5556
"""

import argparse
from concurrent.futures import ThreadPoolExecutor


def evaluate(address: str, max_steps: int) -> str:
    from rlmesh.numpy import RemoteEnv

    env = RemoteEnv(address)
    try:
        lines = [f"{address}: connected"]
        obs, info = env.reset(seed=0)
        for step in range(1, max_steps + 1):
            action = env.action_space.sample()
            obs, reward, term, trunc, info = env.step(action)
            lines.append(f"{address}: step={step} reward={reward:.3f}")
            if term or trunc:
                lines.append(f"{address}: episode complete")
                break
        else:
            lines.append(f"{address}: stopped after {max_steps} steps")
        return "\n".join(lines)
    finally:
        env.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("addresses", nargs="+")
    parser.add_argument("--max-steps", type=int, default=64)
    args = parser.parse_args()

    with ThreadPoolExecutor(max_workers=len(args.addresses)) as executor:
        futures = [
            executor.submit(evaluate, address, args.max_steps) for address in args.addresses
        ]
        for future in futures:
            print(future.result())


if __name__ == "__main__":
    main()
